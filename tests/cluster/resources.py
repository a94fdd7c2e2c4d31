"""Resource types the simulated API serves: the built-ins and those defined by CRDs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # Subresource names served under <plural>/<name>/<sub>.
    subresources: tuple[str, ...] = ()
    # openAPIV3Schema of a CRD version; None for built-ins (not validated).
    schema: dict[str, Any] | None = None
    printer_columns: tuple[dict[str, Any], ...] = ()
    # Storage is shared by all versions of one group/plural (no conversion is simulated).
    crd_name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def discovery(self) -> list[dict[str, Any]]:
        """APIResource entries: the resource itself and one per subresource."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        for sub in self.subresources:
            verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
            entries.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": "Pod" if sub == "log" else self.kind,
                    "verbs": verbs,
                }
            )
        return entries


def _core(plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType("", "v1", plural, kind.lower(), kind, namespaced, **kw)


BUILTINS: tuple[ResourceType, ...] = (
    _core("namespaces", "Namespace", False, short_names=("ns",), subresources=("status",)),
    _core(
        "pods",
        "Pod",
        short_names=("po",),
        categories=("all",),
        subresources=("status", "log"),
    ),
    _core("events", "Event", short_names=("ev",)),
    _core("configmaps", "ConfigMap", short_names=("cm",)),
    _core("secrets", "Secret"),
    _core("serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _core("nodes", "Node", False, short_names=("no",), subresources=("status",)),
    # Stored only (no controllers): so the Helm chart's manifests apply as they would.
    _core(
        "services", "Service", short_names=("svc",), categories=("all",), subresources=("status",)
    ),
    # Run by the Job controller stand-in (jobs.py).
    ResourceType(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        True,
        categories=("all",),
        subresources=("status",),
    ),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        True,
        short_names=("deploy",),
        categories=("all",),
        subresources=("status",),
    ),
    *(
        ResourceType("rbac.authorization.k8s.io", "v1", plural, plural[:-1], kind, namespaced)
        for plural, kind, namespaced in (
            ("roles", "Role", True),
            ("rolebindings", "RoleBinding", True),
            ("clusterroles", "ClusterRole", False),
            ("clusterrolebindings", "ClusterRoleBinding", False),
        )
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        True,
        short_names=("netpol",),
    ),
    # Stored only: the simulation never evaluates a policy's CEL (tests/chart does, with cel-python).
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "validatingadmissionpolicy",
        "ValidatingAdmissionPolicy",
        False,
        categories=("api-extensions",),
        subresources=("status",),
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "validatingadmissionpolicybinding",
        "ValidatingAdmissionPolicyBinding",
        False,
        categories=("api-extensions",),
    ),
    ResourceType("events.k8s.io", "v1", "events", "event", "Event", True, short_names=("ev",)),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "customresourcedefinition",
        "CustomResourceDefinition",
        False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        subresources=("status",),
    ),
)


def crd_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a (valid) CRD."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for ver in spec["versions"]:
        if not ver.get("served", True):
            continue
        subs = ver.get("subresources") or {}
        types.append(
            ResourceType(
                group=spec["group"],
                version=ver["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=tuple(s for s in ("status", "scale") if s in subs),
                schema=(ver.get("schema") or {}).get("openAPIV3Schema") or {},
                printer_columns=tuple(ver.get("additionalPrinterColumns") or ()),
                crd_name=crd["metadata"]["name"],
            )
        )
    return types


class Registry:
    """Which (group, version, plural) the server answers, with lookups by kind and name."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        for rt in BUILTINS:
            self.add(rt)

    def add(self, rt: ResourceType) -> None:
        self._types[(rt.group, rt.version, rt.plural)] = rt

    def remove_crd(self, crd_name: str) -> None:
        for key, rt in list(self._types.items()):
            if rt.crd_name == crd_name:
                del self._types[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def all(self) -> list[ResourceType]:
        return list(self._types.values())

    def versions(self, group: str) -> list[str]:
        return sorted({rt.version for rt in self._types.values() if rt.group == group})

    def groups(self) -> list[str]:
        return sorted({rt.group for rt in self._types.values() if rt.group})

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self._types.values() if rt.group == group and rt.version == version]

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        for rt in self._types.values():
            if rt.api_version == api_version and rt.kind == kind:
                return rt
        return None
