"""CustomResourceDefinition checks and the status the API server gives an accepted CRD."""

from __future__ import annotations

import json
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
        if schema is not None and "x-kubernetes-validations" in json.dumps(schema):
            causes.append(
                cause(
                    f"spec.versions[{i}].schema.openAPIV3Schema",
                    "Forbidden: the kubetune test cluster does not evaluate CEL rules "
                    "(x-kubernetes-validations); see tests/cluster/README.md",
                    "FieldValueForbidden",
                )
            )
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


_STRING_FIELDS = ("type", "format", "pattern", "description", "title", "$ref")
_BOOL_FIELDS = (
    "nullable",
    "uniqueItems",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string",
    "x-kubernetes-embedded-resource",
)
_INT_FIELDS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")
_NUMBER_FIELDS = ("minimum", "maximum", "multipleOf")


def _go_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def schema_decode_error(schema: Any, path: str) -> str | None:
    """Where a schema would not even decode into the API server's JSONSchemaProps.

    Catches what YAML 1.1 does to unquoted `n`, `y`, `on`, `off`, `no`: kubectl's YAML
    parser turns them into booleans, e.g. `required: [n]` becomes `required: [false]`.
    """

    def bad(field: str, value: Any, expected: str) -> str:
        return (
            f"json: cannot unmarshal {_go_type(value)} into Go struct field "
            f"JSONSchemaProps.{path}.{field} of type {expected}"
        )

    if not isinstance(schema, dict):
        return (
            f"json: cannot unmarshal {_go_type(schema)} into Go value of type "
            f"JSONSchemaProps ({path})"
        )
    for field in _STRING_FIELDS:
        if field in schema and not isinstance(schema[field], str):
            return bad(field, schema[field], "string")
    for field in _BOOL_FIELDS:
        if field in schema and not isinstance(schema[field], bool):
            return bad(field, schema[field], "bool")
    for field in _INT_FIELDS:
        value = schema.get(field)
        if field in schema and (isinstance(value, bool) or not isinstance(value, int)):
            return bad(field, value, "int64")
    for field in _NUMBER_FIELDS:
        value = schema.get(field)
        if field in schema and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return bad(field, value, "float64")
    required = schema.get("required", [])
    if not isinstance(required, list):
        return bad("required", required, "[]string")
    for item in required:
        if not isinstance(item, str):
            return bad("required", item, "string")
    for field in ("properties", "patternProperties", "definitions"):
        children = schema.get(field, {})
        if not isinstance(children, dict):
            return bad(field, children, "map[string]JSONSchemaProps")
        for key, child in children.items():
            found = schema_decode_error(child, f"{path}.{field}.{key}")
            if found:
                return found
    subs: list[tuple[str, Any]] = []
    if isinstance(schema.get("items"), dict):
        subs.append(("items", schema["items"]))
    if isinstance(schema.get("additionalProperties"), dict):
        subs.append(("additionalProperties", schema["additionalProperties"]))
    if isinstance(schema.get("not"), dict):
        subs.append(("not", schema["not"]))
    for field in ("allOf", "anyOf", "oneOf"):
        for i, child in enumerate(schema.get(field) or []):
            subs.append((f"{field}[{i}]", child))
    for field, child in subs:
        found = schema_decode_error(child, f"{path}.{field}")
        if found:
            return found
    return None


def crd_decode_error(crd: dict[str, Any]) -> str | None:
    for i, ver in enumerate((crd.get("spec") or {}).get("versions") or []):
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        if schema is not None:
            found = schema_decode_error(schema, f"spec.versions[{i}].schema.openAPIV3Schema")
            if found:
                return found
    return None
