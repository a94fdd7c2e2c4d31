"""CustomResourceDefinition checks and the status the API server gives an accepted CRD."""

from __future__ import annotations

from typing import Any

from .errors import cause
from .meta import now


def crd_causes(crd: dict[str, Any]) -> list[dict[str, str]]:
    """The structural rules a CRD must satisfy before its resource is served."""
    causes = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural = spec.get("group", ""), names.get("plural", "")
    for field in ("group", "scope"):
        if not spec.get(field):
            causes.append(cause(f"spec.{field}", "Required value", "FieldValueRequired"))
    for field in ("plural", "kind"):
        if not names.get(field):
            causes.append(cause(f"spec.names.{field}", "Required value", "FieldValueRequired"))
    name = crd.get("metadata", {}).get("name", "")
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            cause(
                "metadata.name",
                f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    if spec.get("scope") not in (None, "Namespaced", "Cluster"):
        causes.append(
            cause(
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", '
                '"Namespaced"',
                "FieldValueNotSupported",
            )
        )
    versions = spec.get("versions") or []
    if not versions:
        causes.append(cause("spec.versions", "Required value", "FieldValueRequired"))
    elif sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            cause(
                "spec.versions",
                "Invalid value: []apiextensions.CustomResourceDefinitionVersion(...): must "
                "have exactly one version marked as storage version",
            )
        )
    for i, ver in enumerate(versions):
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            causes.append(
                cause(
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    "Required value: schemas are required",
                    "FieldValueRequired",
                )
            )
        elif schema.get("type") != "object":
            causes.append(
                cause(
                    f"spec.versions[{i}].schema.openAPIV3Schema.type",
                    "Required value: must be object at the root",
                    "FieldValueRequired",
                )
            )
    return causes


def crd_status(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd["spec"]
    stamp = now()
    return {
        "acceptedNames": dict(spec["names"]),
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": stamp,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": stamp,
            },
        ],
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
    }
