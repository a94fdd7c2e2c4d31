"""The API server's object semantics, independent of HTTP: CRUD, status subresource,
optimistic concurrency, generation, schema checks, finalizers and deletion.

Runs on the server's event loop thread; the kubelet and the HTTP layer both call it.
"""

from __future__ import annotations

import base64
import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import crds, meta, patches, schema
from .errors import ApiError, already_exists, conflict, invalid, not_found
from .resources import Registry, ResourceType, crd_resource_types
from .selectors import field_matcher, label_matcher
from .store import Key, Store

CRD_GROUP = "apiextensions.k8s.io"
CRD_PLURAL = "customresourcedefinitions"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class WriteOptions:
    """Per-request knobs of a write (query parameters and headers)."""

    dry_run: bool = False
    field_validation: str = ""  # "", Ignore, Warn, Strict
    manager: str = "unknown"
    warnings: list[str] = field(default_factory=list)


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None  # Background (default) | Foreground | Orphan
    preconditions: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False


class Api:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.registry = Registry()
        # Set by the kubelet: True when deleting this pod must wait for its process to stop.
        self.pod_is_running: Callable[[dict[str, Any]], bool] = lambda pod: False
        for name in DEFAULT_NAMESPACES:
            self.create(self.resource("", "v1", "namespaces"), "", {"metadata": {"name": name}})

    # -- lookups -----------------------------------------------------------------------------

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.registry.get(group, version, plural)
        if rt is None:
            raise ApiError(404, "the server could not find the requested resource")
        return rt

    @staticmethod
    def key(rt: ResourceType, namespace: str, name: str) -> Key:
        return (rt.group, rt.plural, namespace if rt.namespaced else "", name)

    def _served(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out

    def _current(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(self.key(rt, namespace, name))
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        return self._served(rt, self._current(rt, namespace, name))

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> dict[str, Any]:
        labels_ok = label_matcher(label_selector)
        fields_ok = field_matcher(field_selector)
        items = [
            self._served(rt, obj)
            for obj in self.store.items(rt.group, rt.plural, namespace if rt.namespaced else None)
            if labels_ok(obj["metadata"].get("labels") or {}) and fields_ok(obj)
        ]
        for item in items:
            # List items carry no apiVersion/kind in real responses; clients do not mind either.
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return {
            "apiVersion": rt.api_version,
            "kind": f"{rt.kind}List",
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": items,
        }

    # -- writes -------------------------------------------------------------------------------

    def _check_body(self, rt: ResourceType, namespace: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "the body of the request must be a JSON object")
        body = copy.deepcopy(body)
        api_version = body.get("apiVersion") or rt.api_version
        kind = body.get("kind") or rt.kind
        if api_version != rt.api_version or kind != rt.kind:
            raise ApiError(
                400,
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})",
            )
        body["apiVersion"], body["kind"] = api_version, kind
        md = body.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise ApiError(400, "metadata must be an object")
        if rt.namespaced:
            if md.get("namespace") and namespace and md["namespace"] != namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            md["namespace"] = namespace or md.get("namespace") or "default"
        else:
            md.pop("namespace", None)
        return body

    def _check_namespace(self, rt: ResourceType, namespace: str, creating: bool) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get(("", "namespaces", "", namespace))
        if ns is None:
            raise ApiError(
                404,
                f'namespaces "{namespace}" not found',
                details={"name": namespace, "kind": "namespaces"},
            )
        if creating and ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"{rt.plural} is forbidden: unable to create new content in namespace "
                f"{namespace} because it is being terminated",
                reason="Forbidden",
            )

    def _admit(self, rt: ResourceType, obj: dict[str, Any], opts: WriteOptions) -> dict[str, Any]:
        """Schema pruning, defaulting and validation (custom resources), and basic checks."""
        name = obj["metadata"].get("name", "")
        causes = meta.name_causes(name, dns_label=rt.plural == "namespaces")
        if rt.schema is not None:
            pruned, dropped = schema.prune(obj, rt.schema)
            if dropped and opts.field_validation == "Strict":
                listed = ", ".join(f'unknown field "{p}"' for p in dropped)
                raise ApiError(
                    400,
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    f"strict decoding error: {listed}",
                )
            if dropped and opts.field_validation in ("Warn", ""):
                opts.warnings += [f'unknown field "{p}"' for p in dropped]
            obj = schema.apply_defaults(pruned, rt.schema)
            causes += schema.validate(obj, rt.schema)
        if (rt.group, rt.plural) == (CRD_GROUP, CRD_PLURAL):
            decode_error = crds.crd_decode_error(obj)
            if decode_error:
                raise ApiError(
                    400,
                    'CustomResourceDefinition in version "v1" cannot be handled as a '
                    f"CustomResourceDefinition: {decode_error}",
                )
            causes += crds.crd_causes(obj)
        if rt.plural == "pods" and rt.group == "":
            causes += _pod_causes(obj)
        if rt.plural == "secrets" and rt.group == "":
            obj = _secret_defaults(obj)
        if causes:
            raise invalid(rt.kind, rt.group, name, causes)
        return obj

    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Any,
        opts: WriteOptions | None = None,
    ) -> dict[str, Any]:
        opts = opts or WriteOptions()
        obj = self._check_body(rt, namespace, body)
        md = obj["metadata"]
        if not md.get("name"):
            if not md.get("generateName"):
                raise invalid(
                    rt.kind,
                    rt.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "message": "Required value: name or generateName is required",
                            "field": "metadata.name",
                        }
                    ],
                )
            md["name"] = meta.generated_name(md["generateName"])
        self._check_namespace(rt, md.get("namespace", ""), creating=True)
        if md.get("resourceVersion"):
            raise ApiError(400, "resourceVersion should not be set on objects to be created")
        key = self.key(rt, md.get("namespace", ""), md["name"])
        if self.store.get(key) is not None:
            raise already_exists(rt.plural, rt.group, md["name"])
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"):
            md.pop(transient, None)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = meta.now()
        md["generation"] = 1
        if rt.has_status or rt.plural in ("pods", "namespaces"):
            obj.pop("status", None)
        obj = self._admit(rt, obj, opts)
        obj = _initial_status(rt, obj)
        meta.record_manager(obj["metadata"], opts.manager, "Update", rt.api_version)
        if opts.dry_run:
            return self._served(rt, obj)
        stored = self.store.put(key, obj, "ADDED")
        if (rt.group, rt.plural) == (CRD_GROUP, CRD_PLURAL):
            stored = self._establish(stored)
        if (rt.group, rt.plural) == ("", "namespaces"):
            # The service account controller's work: every namespace has `default`.
            accounts = self.resource("", "v1", "serviceaccounts")
            self.create(accounts, md["name"], {"metadata": {"name": "default"}})
        return self._served(rt, stored)

    def _establish(self, crd: dict[str, Any]) -> dict[str, Any]:
        """Serve the CRD's resource from now on and report it Established (as a new version)."""
        self.registry.remove_crd(crd["metadata"]["name"])
        for rt in crd_resource_types(crd):
            self.registry.add(rt)
        updated = copy.deepcopy(crd)
        updated["status"] = crds.crd_status(crd)
        key = ("apiextensions.k8s.io", CRD_PLURAL, "", crd["metadata"]["name"])
        return self.store.put(key, updated, "MODIFIED")

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        opts: WriteOptions | None = None,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        opts = opts or WriteOptions()
        current = self._current(rt, namespace, name)
        obj = self._check_body(rt, namespace, body)
        md = obj["metadata"]
        if md.get("name", name) != name:
            raise ApiError(
                400,
                f"the name of the object ({md.get('name')}) does not match the name on the "
                f"URL ({name})",
            )
        md["name"] = name
        cur_md = current["metadata"]
        if md.get("resourceVersion") and md["resourceVersion"] != cur_md["resourceVersion"]:
            raise conflict(rt.plural, rt.group, name)
        if md.get("uid") and md["uid"] != cur_md["uid"]:
            raise conflict(rt.plural, rt.group, name)
        return self._write(rt, current, obj, opts, subresource)

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        opts: WriteOptions | None = None,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        opts = opts or WriteOptions()
        current = self._current(rt, namespace, name)
        patched = patches.apply_patch(
            content_type, self._served(rt, current), body, custom=rt.crd_name is not None
        )
        if not isinstance(patched, dict):
            raise ApiError(422, "the patch did not produce an object")
        patched_md = patched.get("metadata") or {}
        if patched_md.get("resourceVersion", cur := current["metadata"]["resourceVersion"]) != cur:
            raise conflict(rt.plural, rt.group, name)
        obj = self._check_body(rt, namespace, patched)
        if obj["metadata"].get("name") != name:
            raise ApiError(400, "the name of the object cannot be changed by a patch")
        return self._write(rt, current, obj, opts, subresource)

    def _write(
        self,
        rt: ResourceType,
        current: dict[str, Any],
        obj: dict[str, Any],
        opts: WriteOptions,
        subresource: str | None,
    ) -> dict[str, Any]:
        cur_md = current["metadata"]
        if subresource == "status":
            # Writes to /status change the status only.
            new = copy.deepcopy(current)
            new["status"] = obj.get("status")
            if new["status"] is None:
                new.pop("status")
        else:
            new = obj
            if rt.has_status:
                if "status" in current:
                    new["status"] = copy.deepcopy(current["status"])
                else:
                    new.pop("status", None)
        md = new["metadata"]
        # Fields clients cannot change.
        for keep in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
        ):
            if keep in cur_md:
                md[keep] = cur_md[keep]
            else:
                md.pop(keep, None)
        if cur_md.get("deletionTimestamp"):
            added = set(md.get("finalizers") or []) - set(cur_md.get("finalizers") or [])
            if added:
                raise invalid(
                    rt.kind,
                    rt.group,
                    cur_md["name"],
                    [
                        {
                            "reason": "FieldValueForbidden",
                            "message": "Forbidden: no new finalizers can be added if the object is "
                            "being deleted, found new finalizers " + str(sorted(added)),
                            "field": "metadata.finalizers",
                        }
                    ],
                )
        new = self._admit(rt, new, opts)
        if _spec_changed(rt, current, new):
            new["metadata"]["generation"] = int(cur_md.get("generation", 1)) + 1
        operation_api = rt.api_version
        meta.record_manager(new["metadata"], opts.manager, "Update", operation_api)
        if opts.dry_run:
            return self._served(rt, new)
        if _same(current, new):
            return self._served(rt, current)  # no-op writes keep the resourceVersion
        key = self.key(rt, cur_md.get("namespace", ""), cur_md["name"])
        stored = self.store.put(key, new, "MODIFIED")
        is_crd = (rt.group, rt.plural) == (CRD_GROUP, CRD_PLURAL)
        if is_crd and not md.get("deletionTimestamp") and subresource != "status":
            stored = self._establish(stored)
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            return self._served(rt, self._remove(key))
        return self._served(rt, stored)

    # -- deletion -----------------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        opts: DeleteOptions | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Returns the object and whether it is gone (False: deletion is in progress)."""
        opts = opts or DeleteOptions()
        current = self._current(rt, namespace, name)
        cur_md = current["metadata"]
        pre = opts.preconditions
        if pre.get("uid") and pre["uid"] != cur_md["uid"]:
            raise ApiError(
                409,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                f"{cur_md['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != cur_md["resourceVersion"]:
            raise ApiError(
                409,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{cur_md['resourceVersion']}",
            )
        if opts.dry_run:
            return self._served(rt, current), True
        key = self.key(rt, cur_md.get("namespace", ""), name)
        new = copy.deepcopy(current)
        md = new["metadata"]
        finalizers = list(md.get("finalizers") or [])
        if (
            opts.propagation == "Foreground"
            and "foregroundDeletion" not in finalizers
            and self._dependents(cur_md["uid"])
        ):
            finalizers.append("foregroundDeletion")
        if opts.propagation == "Orphan":
            self._orphan_dependents(cur_md["uid"])
        graceful = rt.group == "" and rt.plural == "pods" and self._pod_grace(current, opts)
        special = self._cleanup_first(rt, current)
        if not finalizers and not graceful and not special:
            return self._served(rt, self._remove(key)), True
        md["finalizers"] = finalizers
        if not finalizers:
            md.pop("finalizers")
        if not md.get("deletionTimestamp"):
            md["deletionTimestamp"] = meta.now()
            md["deletionGracePeriodSeconds"] = graceful or 0
        elif graceful is not False and graceful < md.get("deletionGracePeriodSeconds", 0):
            md["deletionGracePeriodSeconds"] = graceful
        if rt.plural == "namespaces" and rt.group == "":
            new.setdefault("status", {})["phase"] = "Terminating"
        if _same(current, new):
            return self._served(rt, current), False
        stored = self.store.put(key, new, "MODIFIED")
        if special:
            self._sweep(rt, stored)
            stored = self.store.get(key) or stored
        if "foregroundDeletion" in finalizers:
            for dep_rt, dep in self._dependents(cur_md["uid"]):
                self._delete_quietly(dep_rt, dep)
            self._release_foreground(stored)
        if self.store.get(key) is None:
            return self._served(rt, stored), True
        return self._served(rt, stored), False

    def _pod_grace(self, pod: dict[str, Any], opts: DeleteOptions) -> int | bool:
        """Grace seconds when deleting this pod must wait for its process, else False."""
        if opts.grace_period == 0 or not self.pod_is_running(pod):
            return False
        if opts.grace_period is not None:
            return opts.grace_period
        return int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))

    def _cleanup_first(self, rt: ResourceType, obj: dict[str, Any]) -> bool:
        """Namespaces and CRDs stay Terminating until what they contain is deleted."""
        if rt.group == "" and rt.plural == "namespaces":
            return True
        return (rt.group, rt.plural) == (CRD_GROUP, CRD_PLURAL)

    def _contents(self, rt: ResourceType, obj: dict[str, Any]) -> list[Key]:
        name = obj["metadata"]["name"]
        if rt.plural == "namespaces":
            return [k for k in self.store.objects if k[2] == name]
        group, plural = obj["spec"]["group"], obj["spec"]["names"]["plural"]
        return [k for k in self.store.objects if k[0] == group and k[1] == plural]

    def _sweep(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Delete the contents of a terminating namespace/CRD; drop it once empty."""
        for key in self._contents(rt, obj):
            content = self.store.get(key)
            if content is not None and not content["metadata"].get("deletionTimestamp"):
                content_rt = self._type_of(key)
                if content_rt is not None:
                    self._delete_quietly(content_rt, content)
        if not self._contents(rt, obj):
            key = self.key(rt, "", obj["metadata"]["name"])
            if self.store.get(key) is not None:
                if rt.plural == CRD_PLURAL:
                    self.registry.remove_crd(obj["metadata"]["name"])
                self._remove(key)

    def _type_of(self, key: Key) -> ResourceType | None:
        for rt in self.registry.all():
            if rt.storage_key == (key[0], key[1]):
                return rt
        return None

    def _delete_quietly(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        with contextlib.suppress(ApiError):  # already gone: nothing to do
            self.delete(rt, md.get("namespace", ""), md["name"])

    def remove(self, rt: ResourceType, namespace: str, name: str) -> None:
        """Drop an object now (the kubelet's final step of a graceful pod deletion)."""
        key = self.key(rt, namespace, name)
        obj = self.store.get(key)
        if obj is None:
            return
        if obj["metadata"].get("finalizers"):
            return  # finalizers still hold it; the last one removed drops it
        self._remove(key)

    def _remove(self, key: Key) -> dict[str, Any]:
        gone = self.store.remove(key)
        uid = gone["metadata"]["uid"]
        self._collect_garbage(uid)
        self._after_removal(key, gone)
        return gone

    def _dependents(self, uid: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        found = []
        for key, obj in list(self.store.objects.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                rt = self._type_of(key)
                if rt is not None:
                    found.append((rt, obj))
        return found

    def _collect_garbage(self, uid: str) -> None:
        """Background propagation: dependents whose owner is gone are deleted."""
        for rt, obj in self._dependents(uid):
            if not obj["metadata"].get("deletionTimestamp"):
                self._delete_quietly(rt, obj)

    def _orphan_dependents(self, uid: str) -> None:
        for rt, obj in self._dependents(uid):
            new = copy.deepcopy(obj)
            refs = [r for r in new["metadata"]["ownerReferences"] if r.get("uid") != uid]
            new["metadata"]["ownerReferences"] = refs
            if not refs:
                new["metadata"].pop("ownerReferences")
            md = obj["metadata"]
            self.store.put(self.key(rt, md.get("namespace", ""), md["name"]), new, "MODIFIED")

    def _release_foreground(self, owner: dict[str, Any]) -> None:
        md = owner["metadata"]
        if "foregroundDeletion" not in (md.get("finalizers") or []):
            return
        if self._dependents(md["uid"]):
            return
        for key, obj in self.store.objects.items():
            if obj["metadata"]["uid"] == md["uid"]:
                new = copy.deepcopy(obj)
                new["metadata"]["finalizers"] = [
                    f for f in new["metadata"]["finalizers"] if f != "foregroundDeletion"
                ]
                if new["metadata"]["finalizers"]:
                    self.store.put(key, new, "MODIFIED")
                else:
                    self._remove(key)
                return

    def _after_removal(self, key: Key, gone: dict[str, Any]) -> None:
        """Let terminating namespaces/CRDs and foreground owners finish once emptied."""
        for ref in gone["metadata"].get("ownerReferences") or []:
            for obj in list(self.store.objects.values()):
                if obj["metadata"]["uid"] == ref.get("uid"):
                    self._release_foreground(obj)
        if key[2]:
            ns = self.store.get(("", "namespaces", "", key[2]))
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self._sweep(self.resource("", "v1", "namespaces"), ns)
        for crd in list(self.store.items(CRD_GROUP, CRD_PLURAL, None)):
            spec = crd["spec"]
            if (spec["group"], spec["names"]["plural"]) == (key[0], key[1]) and crd["metadata"].get(
                "deletionTimestamp"
            ):
                self._sweep(self.resource(CRD_GROUP, "v1", CRD_PLURAL), crd)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal apart from resourceVersion and managedFields timestamps."""

    def strip(o: dict[str, Any]) -> dict[str, Any]:
        o = copy.deepcopy(o)
        o["metadata"].pop("resourceVersion", None)
        o["metadata"].pop("managedFields", None)
        o.pop("apiVersion", None)
        o.pop("kind", None)
        return o

    return strip(a) == strip(b)


def _spec_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Generation tracks changes outside metadata (and outside status when it is a subresource)."""
    skip = {"metadata", "apiVersion", "kind"}
    if rt.has_status:
        skip.add("status")
    keys = (set(old) | set(new)) - skip
    return any(old.get(k) != new.get(k) for k in keys)


def _initial_status(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if rt.group != "":
        return obj
    if rt.plural == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": _qos(obj)}
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        for c in spec.get("containers") or []:
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", "IfNotPresent")
    elif rt.plural == "namespaces":
        obj["status"] = {"phase": "Active"}
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
            "name"
        ]
    return obj


def _qos(pod: dict[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("limits") or r.get("requests") for r in resources):
        return "BestEffort"
    if all(r.get("limits") and (r.get("requests") in (None, r.get("limits"))) for r in resources):
        return "Guaranteed"
    return "Burstable"


def _secret_defaults(secret: dict[str, Any]) -> dict[str, Any]:
    """`type` defaults to Opaque; write-only `stringData` is merged into `data` (base64)."""
    secret.setdefault("type", "Opaque")
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = dict(secret.get("data") or {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data
    return secret


def _pod_causes(pod: dict[str, Any]) -> list[dict[str, str]]:
    containers = (pod.get("spec") or {}).get("containers")
    if not containers:
        return [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.containers",
            }
        ]
    causes = []
    for i, c in enumerate(containers):
        for required in ("name", "image"):
            if not c.get(required):
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": f"spec.containers[{i}].{required}",
                    }
                )
    return causes
