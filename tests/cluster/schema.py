"""CRD structural schemas: pruning, defaulting and validation, with the API server's messages.

Covers what CRDs commonly use: type, properties, additionalProperties, items, required, enum,
minimum/maximum (+exclusive), minLength/maxLength, pattern, minItems/maxItems, uniqueItems,
nullable, x-kubernetes-int-or-string, x-kubernetes-preserve-unknown-fields, allOf/anyOf/oneOf/not
(validation only) and default. CEL rules (`x-kubernetes-validations`) are not evaluated: CRDs
that carry them are refused when created (see crds.py), never silently half-validated.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from .errors import cause

Schema = dict[str, Any]
Causes = list[dict[str, str]]

# Fields every object keeps whatever its schema says.
_ROOT_KEEP = ("apiVersion", "kind", "metadata")


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else _plain(value)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def prune(value: Any, schema: Schema, path: str = "", root: bool = True) -> tuple[Any, list[str]]:
    """Drop fields the schema does not know; returns the value and the dropped field paths."""
    dropped: list[str] = []
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields") and not schema.get("properties"):
            return value, dropped
        props: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        out: dict[str, Any] = {}
        for key, item in value.items():
            child_path = _join(path, key)
            if root and key in _ROOT_KEEP:
                out[key] = item
            elif key in props:
                out[key], sub = prune(item, props[key], child_path, False)
                dropped += sub
            elif isinstance(additional, dict):
                out[key], sub = prune(item, additional, child_path, False)
                dropped += sub
            elif additional is True or schema.get("x-kubernetes-preserve-unknown-fields"):
                out[key] = item
            else:
                dropped.append(child_path)
        return out, dropped
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        out_list = []
        for i, item in enumerate(value):
            pruned, sub = prune(item, schema["items"], f"{path}[{i}]", False)
            out_list.append(pruned)
            dropped += sub
        return out_list, dropped
    return value, dropped


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Fill in `default`s of absent properties, recursively, as the API server does on decode."""
    if isinstance(value, dict):
        props: dict[str, Schema] = schema.get("properties") or {}
        out = dict(value)
        for key, sub in props.items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = apply_defaults(out[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in out:
                if key not in props:
                    out[key] = apply_defaults(out[key], additional)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(item, schema["items"]) for item in value]
    return value


def _type_ok(value: Any, schema: Schema) -> bool:
    expected = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, (int, str)) and not isinstance(value, bool)
    if expected is None:
        return True
    if expected == "object":
        return isinstance(value, dict)
    if expected == "array":
        return isinstance(value, list)
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return True


def validate(value: Any, schema: Schema, path: str = "") -> Causes:
    """Field causes for every rule `value` breaks, messages worded like the API server's."""
    if value is None:
        if schema.get("nullable"):
            return []
        if path:
            return [
                cause(
                    path,
                    f'Invalid value: "null": {path} in body must be of type '
                    f'{schema.get("type", "object")}: "null"',
                    "FieldValueTypeInvalid",
                )
            ]
        return []
    if not _type_ok(value, schema):
        actual = _json_type(value)
        return [
            cause(
                path,
                f'Invalid value: "{actual}": {path} in body must be of type '
                f'{schema.get("type")}: "{actual}"',
                "FieldValueTypeInvalid",
            )
        ]
    causes: Causes = []
    causes += _validate_scalar(value, schema, path)
    if isinstance(value, dict):
        causes += _validate_object(value, schema, path)
    if isinstance(value, list):
        causes += _validate_array(value, schema, path)
    causes += _validate_combinators(value, schema, path)
    return causes


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _validate_scalar(value: Any, schema: Schema, path: str) -> Causes:
    causes: Causes = []
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(_show(v) for v in enum)
        causes.append(
            cause(
                path,
                f"Unsupported value: {_show(value)}: supported values: {supported}",
                "FieldValueNotSupported",
            )
        )
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        shown = _plain(value)
        if "minimum" in schema:
            low = schema["minimum"]
            if schema.get("exclusiveMinimum") and value <= low:
                causes.append(
                    cause(
                        path, f"Invalid value: {shown}: {path} in body should be greater than {low}"
                    )
                )
            elif value < low:
                causes.append(
                    cause(
                        path,
                        f"Invalid value: {shown}: {path} in body should be greater than or "
                        f"equal to {low}",
                    )
                )
        if "maximum" in schema:
            high = schema["maximum"]
            if schema.get("exclusiveMaximum") and value >= high:
                causes.append(
                    cause(
                        path, f"Invalid value: {shown}: {path} in body should be less than {high}"
                    )
                )
            elif value > high:
                causes.append(
                    cause(
                        path,
                        f"Invalid value: {shown}: {path} in body should be less than or equal "
                        f"to {high}",
                    )
                )
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            causes.append(
                cause(
                    path,
                    f"Invalid value: {_show(value)}: {path} in body should match "
                    f"'{schema['pattern']}'",
                )
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            causes.append(
                cause(
                    path,
                    f"Invalid value: {_show(value)}: {path} in body should be at least "
                    f"{schema['minLength']} chars long",
                )
            )
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            causes.append(
                cause(
                    path,
                    f"Too long: may not be more than {schema['maxLength']} bytes",
                    "FieldValueTooLong",
                )
            )
    return causes


def _validate_object(value: dict[str, Any], schema: Schema, path: str) -> Causes:
    causes: Causes = []
    for key in schema.get("required") or []:
        if key not in value:
            causes.append(cause(_join(path, key), "Required value", "FieldValueRequired"))
    props: dict[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        if not path and key in _ROOT_KEEP:
            continue
        if key in props:
            causes += validate(item, props[key], _join(path, key))
        elif isinstance(additional, dict):
            causes += validate(item, additional, _join(path, key))
    if "minProperties" in schema and len(value) < schema["minProperties"]:
        causes.append(
            cause(
                path,
                f"Invalid value: {len(value)}: {path} in body should have at least "
                f"{schema['minProperties']} properties",
            )
        )
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        causes.append(
            cause(
                path,
                f"Too many: {len(value)}: must have at most {schema['maxProperties']} items",
                "FieldValueTooMany",
            )
        )
    return causes


def _validate_array(value: list[Any], schema: Schema, path: str) -> Causes:
    causes: Causes = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        causes.append(
            cause(
                path,
                f"Invalid value: {len(value)}: {path} in body should have at least "
                f"{schema['minItems']} items",
            )
        )
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        causes.append(
            cause(
                path,
                f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                "FieldValueTooMany",
            )
        )
    if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
        # Hashed, not compared pairwise: a long list must not cost quadratic time here.
        seen: set[Any] = set()
        for i, item in enumerate(value):
            key = _frozen(item)
            if key in seen:
                causes.append(
                    cause(f"{path}[{i}]", f"Duplicate value: {_show(item)}", "FieldValueDuplicate")
                )
            seen.add(key)
    if isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            causes += validate(item, schema["items"], f"{path}[{i}]")
    return causes


def _frozen(item: Any) -> Any:
    """A hashable stand-in that is == exactly when the JSON values are (lists, objects)."""
    if isinstance(item, dict):
        return frozenset((k, _frozen(v)) for k, v in item.items())
    if isinstance(item, list):
        return tuple(_frozen(v) for v in item)
    return item


def _validate_combinators(value: Any, schema: Schema, path: str) -> Causes:
    causes: Causes = []
    for sub in schema.get("allOf") or []:
        causes += validate(value, {"type": schema.get("type"), **sub}, path)
    if schema.get("anyOf") and all(validate(value, sub, path) for sub in schema["anyOf"]):
        causes.append(
            cause(
                path,
                f"Invalid value: {_show(value)}: {path} in body must "
                "match at least one schema (anyOf)",
            )
        )
    if schema.get("oneOf"):
        matching = sum(1 for sub in schema["oneOf"] if not validate(value, sub, path))
        if matching != 1:
            causes.append(
                cause(
                    path,
                    f"Invalid value: {_show(value)}: {path} in body must "
                    "match exactly one schema (oneOf)",
                )
            )
    if isinstance(schema.get("not"), dict) and not validate(value, schema["not"], path):
        causes.append(
            cause(
                path,
                f"Invalid value: {_show(value)}: {path} in body must not match the schema (not)",
            )
        )
    return causes
