"""The API server's object semantics, independent of HTTP: reads, writes, the status
subresource, optimistic concurrency, generation and schema admission (deletion: lifecycle.py).

Runs on the server's event loop thread; the kubelet and the HTTP layer both call it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import builtin_fields, crds, kinds, limits, meta, patches, schema
from .errors import ApiError, already_exists, conflict, invalid, not_found
from .lifecycle import CRD_GROUP, CRD_PLURAL, DeleteOptions, Lifecycle
from .pod_security import pod_security_error
from .resources import Registry, ResourceType, crd_resource_types
from .selectors import field_matcher, label_matcher
from .store import Key, Store

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class WriteOptions:
    """Per-request knobs of a write (query parameters and headers)."""

    dry_run: bool = False
    field_validation: str = ""  # "", Ignore, Warn, Strict
    manager: str = "unknown"
    warnings: list[str] = field(default_factory=list)


class Api:
    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.registry = Registry()
        # Set by the kubelet: True when deleting this pod must wait for its process to stop.
        self.pod_is_running: Callable[[dict[str, Any]], bool] = lambda pod: False
        # Mutating admission webhooks (e.g. Kueue's, kueue.py): each may change a new object.
        self.create_mutators: list[Callable[[ResourceType, dict[str, Any]], dict[str, Any]]] = []
        self.lifecycle = Lifecycle(self)
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

    def served(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        out["apiVersion"] = rt.api_version
        out["kind"] = rt.kind
        return out

    def current(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(self.key(rt, namespace, name))
        if obj is None:
            raise not_found(rt.plural, rt.group, name)
        return obj

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        return self.served(rt, self.current(rt, namespace, name))

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
            self.served(rt, obj)
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
        model = builtin_fields.model_of(rt.group, rt.plural)
        if rt.schema is not None or model is not None:
            if model is not None:
                pruned, dropped = builtin_fields.prune_unknown(obj, model)
            else:
                pruned, dropped = schema.prune(obj, rt.schema or {})
            if dropped and opts.field_validation == "Strict":
                listed = ", ".join(f'unknown field "{p}"' for p in dropped)
                raise ApiError(
                    400,
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    f"strict decoding error: {listed}",
                )
            if dropped and opts.field_validation in ("Warn", ""):
                opts.warnings += [f'unknown field "{p}"' for p in dropped]
            obj = pruned
        if rt.schema is not None:
            obj = schema.apply_defaults(obj, rt.schema)
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
            causes += kinds.pod_causes(obj)
        if rt.plural == "secrets" and rt.group == "":
            obj = kinds.secret_defaults(obj)
        if (rt.group, rt.plural) == ("batch", "jobs"):
            causes += kinds.job_causes(obj)
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
        for mutate in self.create_mutators:
            obj = mutate(rt, obj)
        obj = self._admit(rt, obj, opts)
        if rt.plural == "pods" and rt.group == "":
            namespace_obj = self.store.get(("", "namespaces", "", md.get("namespace", "")))
            refused = pod_security_error(namespace_obj, obj)
            if refused is not None:
                raise refused
        obj = kinds.initial_status(rt, obj)
        if (rt.group, rt.plural) == ("batch", "jobs"):
            obj = kinds.job_defaults(obj)
        meta.record_manager(obj["metadata"], opts.manager, "Update", rt.api_version)
        if opts.dry_run:
            return self.served(rt, obj)
        limits.check_stored(obj)
        stored = self.store.put(key, obj, "ADDED")
        if (rt.group, rt.plural) == (CRD_GROUP, CRD_PLURAL):
            stored = self._establish(stored)
        if (rt.group, rt.plural) == ("", "namespaces"):
            # The service account controller's work: every namespace has `default`.
            accounts = self.resource("", "v1", "serviceaccounts")
            self.create(accounts, md["name"], {"metadata": {"name": "default"}})
        return self.served(rt, stored)

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
        current = self.current(rt, namespace, name)
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
        current = self.current(rt, namespace, name)
        patched = patches.apply_patch(
            content_type, self.served(rt, current), body, custom=rt.crd_name is not None
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
            return self.served(rt, new)
        if meta.same_content(current, new):
            return self.served(rt, current)  # no-op writes keep the resourceVersion
        limits.check_stored(new)
        key = self.key(rt, cur_md.get("namespace", ""), cur_md["name"])
        stored = self.store.put(key, new, "MODIFIED")
        is_crd = (rt.group, rt.plural) == (CRD_GROUP, CRD_PLURAL)
        if is_crd and not md.get("deletionTimestamp") and subresource != "status":
            stored = self._establish(stored)
        if md.get("deletionTimestamp") and not md.get("finalizers"):
            return self.served(rt, self.lifecycle.drop(key))
        return self.served(rt, stored)

    # -- deletion -----------------------------------------------------------------------------

    # -- deletion (lifecycle.py) ----------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        opts: DeleteOptions | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Returns the object and whether it is gone (False: deletion is in progress)."""
        return self.lifecycle.delete(rt, namespace, name, opts)

    def remove(self, rt: ResourceType, namespace: str, name: str) -> None:
        """Drop an object now unless finalizers hold it (the kubelet's final step)."""
        self.lifecycle.remove(rt, namespace, name)


def _spec_changed(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Generation tracks changes outside metadata (and outside status when it is a subresource)."""
    skip = {"metadata", "apiVersion", "kind"}
    if rt.has_status:
        skip.add("status")
    keys = (set(old) | set(new)) - skip
    return any(old.get(k) != new.get(k) for k in keys)
