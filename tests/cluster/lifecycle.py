"""Deletion: graceful pod deletion, finalizers, garbage collection through
ownerReferences (Background, Foreground, Orphan), and namespaces and CRDs that stay
Terminating until what they contain is gone.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import meta
from .errors import ApiError
from .resources import ResourceType
from .store import Key

if TYPE_CHECKING:
    from .api import Api

CRD_GROUP = "apiextensions.k8s.io"
CRD_PLURAL = "customresourcedefinitions"


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None  # Background (default) | Foreground | Orphan
    preconditions: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False


class Lifecycle:
    def __init__(self, api: Api) -> None:
        self.api = api

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        opts: DeleteOptions | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Returns the object and whether it is gone (False: deletion is in progress)."""
        opts = opts or DeleteOptions()
        if opts.propagation is None and (rt.group, rt.plural) == ("batch", "jobs"):
            # batch/v1 keeps its old default: a deleted Job orphans its pods, which run on.
            opts = dataclasses.replace(opts, propagation="Orphan")
        current = self.api.current(rt, namespace, name)
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
            return self.api.served(rt, current), True
        key = self.api.key(rt, cur_md.get("namespace", ""), name)
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
            return self.api.served(rt, self.drop(key)), True
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
        if meta.same_content(current, new):
            return self.api.served(rt, current), False
        stored = self.api.store.put(key, new, "MODIFIED")
        if special:
            self._sweep(rt, stored)
            stored = self.api.store.get(key) or stored
        if "foregroundDeletion" in finalizers:
            for dep_rt, dep in self._dependents(cur_md["uid"]):
                self._delete_quietly(dep_rt, dep)
            self._release_foreground(stored)
        if self.api.store.get(key) is None:
            return self.api.served(rt, stored), True
        return self.api.served(rt, stored), False

    def _pod_grace(self, pod: dict[str, Any], opts: DeleteOptions) -> int | bool:
        """Grace seconds when deleting this pod must wait for its process, else False."""
        if opts.grace_period == 0 or not self.api.pod_is_running(pod):
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
            return [k for k in self.api.store.objects if k[2] == name]
        group, plural = obj["spec"]["group"], obj["spec"]["names"]["plural"]
        return [k for k in self.api.store.objects if k[0] == group and k[1] == plural]

    def _sweep(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Delete the contents of a terminating namespace/CRD; drop it once empty."""
        for key in self._contents(rt, obj):
            content = self.api.store.get(key)
            if content is not None and not content["metadata"].get("deletionTimestamp"):
                content_rt = self._type_of(key)
                if content_rt is not None:
                    self._delete_quietly(content_rt, content)
        if not self._contents(rt, obj):
            key = self.api.key(rt, "", obj["metadata"]["name"])
            if self.api.store.get(key) is not None:
                if rt.plural == CRD_PLURAL:
                    self.api.registry.remove_crd(obj["metadata"]["name"])
                self.drop(key)

    def _type_of(self, key: Key) -> ResourceType | None:
        for rt in self.api.registry.all():
            if rt.storage_key == (key[0], key[1]):
                return rt
        return None

    def _delete_quietly(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        md = obj["metadata"]
        with contextlib.suppress(ApiError):  # already gone: nothing to do
            self.delete(rt, md.get("namespace", ""), md["name"])

    def remove(self, rt: ResourceType, namespace: str, name: str) -> None:
        """Drop an object now (the kubelet's final step of a graceful pod deletion)."""
        key = self.api.key(rt, namespace, name)
        obj = self.api.store.get(key)
        if obj is None:
            return
        if obj["metadata"].get("finalizers"):
            return  # finalizers still hold it; the last one removed drops it
        self.drop(key)

    def drop(self, key: Key) -> dict[str, Any]:
        gone = self.api.store.remove(key)
        uid = gone["metadata"]["uid"]
        self._collect_garbage(uid)
        self._after_removal(key, gone)
        return gone

    def _dependents(self, uid: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        found = []
        for key, obj in list(self.api.store.objects.items()):
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
            self.api.store.put(
                self.api.key(rt, md.get("namespace", ""), md["name"]), new, "MODIFIED"
            )

    def _release_foreground(self, owner: dict[str, Any]) -> None:
        md = owner["metadata"]
        if "foregroundDeletion" not in (md.get("finalizers") or []):
            return
        if self._dependents(md["uid"]):
            return
        for key, obj in self.api.store.objects.items():
            if obj["metadata"]["uid"] == md["uid"]:
                new = copy.deepcopy(obj)
                new["metadata"]["finalizers"] = [
                    f for f in new["metadata"]["finalizers"] if f != "foregroundDeletion"
                ]
                if new["metadata"]["finalizers"]:
                    self.api.store.put(key, new, "MODIFIED")
                else:
                    self.drop(key)
                return

    def _after_removal(self, key: Key, gone: dict[str, Any]) -> None:
        """Let terminating namespaces/CRDs and foreground owners finish once emptied."""
        for ref in gone["metadata"].get("ownerReferences") or []:
            for obj in list(self.api.store.objects.values()):
                if obj["metadata"]["uid"] == ref.get("uid"):
                    self._release_foreground(obj)
        if key[2]:
            ns = self.api.store.get(("", "namespaces", "", key[2]))
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                self._sweep(self.api.resource("", "v1", "namespaces"), ns)
        for crd in list(self.api.store.items(CRD_GROUP, CRD_PLURAL, None)):
            spec = crd["spec"]
            if (spec["group"], spec["names"]["plural"]) == (key[0], key[1]) and crd["metadata"].get(
                "deletionTimestamp"
            ):
                self._sweep(self.api.resource(CRD_GROUP, "v1", CRD_PLURAL), crd)
