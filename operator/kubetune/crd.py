"""Generate the HyperparameterSweep CustomResourceDefinition from the spec models.

The pydantic models are the one source of truth; this turns their JSON Schema into
a Kubernetes *structural* schema: every node typed, $refs inlined, nullable for
optional fields, discriminated unions merged into one object, and
x-kubernetes-preserve-unknown-fields only on the few leaves that hold any value
(categorical choices, free-form trainer args, the user's own pod template).
"""

from typing import Any

import yaml

from kubetune import API_GROUP, API_VERSION, CATEGORIES, KIND, PLURAL, SHORT_NAMES, SINGULAR
from kubetune.spec import SweepSpec, SweepStatus

CRD_NAME = f"{PLURAL}.{API_GROUP}"
CRD_FILE = f"crds/{CRD_NAME}.yaml"

# JSON Schema keys that carry over to OpenAPI v3 as they are.
_KEPT = (
    "description",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "enum",
    "format",
)
_SCALARS = {"string", "integer", "number", "boolean"}

PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Best", "type": "number", "jsonPath": ".status.best.value"},
    {"name": "Metric", "type": "string", "jsonPath": ".status.objective"},
    {"name": "Trials", "type": "integer", "jsonPath": ".status.trials.total"},
    {"name": "Running", "type": "integer", "jsonPath": ".status.trials.running"},
    # Only sweeps with spec.queueName ever have any: shown by `kubectl get -o wide`.
    {"name": "Queued", "type": "integer", "jsonPath": ".status.trials.queued", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


class _Converter:
    def __init__(self, root: dict[str, Any]) -> None:
        self.defs: dict[str, Any] = root.get("$defs", {})

    def convert(self, node: dict[str, Any]) -> dict[str, Any]:
        node = self._resolve(node)
        if "oneOf" in node and "discriminator" in node:
            return self._merge_union([self._resolve(v) for v in node["oneOf"]], node)
        variants = node.get("anyOf") or node.get("oneOf")
        if variants is not None:
            return self._convert_any_of(node, variants)
        if "const" in node:
            node = {**node, "enum": [node["const"]]}
        kind = node.get("type")
        out: dict[str, Any] = {k: node[k] for k in _KEPT if k in node}
        self._copy_bounds(node, out)
        if "default" in node and node["default"] is not None and kind in _SCALARS:
            out["default"] = node["default"]
        if kind == "object" or "properties" in node or "additionalProperties" in node:
            return self._object(node, out)
        if kind == "array":
            out["type"] = "array"
            items = node.get("items")
            if items is None and "prefixItems" in node:
                # A [step, value] pair: a list of numbers to Kubernetes.
                items = {"type": "number"}
            out["items"] = self.convert(items) if items else _ANY
            return out
        if kind in _SCALARS:
            out["type"] = kind
            return out
        return {**out, **_ANY}

    def _object(self, node: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        out["type"] = "object"
        properties = node.get("properties")
        if properties:
            out["properties"] = {k: self.convert(v) for k, v in properties.items()}
            if node.get("required"):
                out["required"] = list(node["required"])
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            out["additionalProperties"] = self.convert(extra)
        elif not properties:
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out

    def _convert_any_of(self, node: dict[str, Any], variants: list[Any]) -> dict[str, Any]:
        resolved = [self._resolve(v) for v in variants]
        non_null = [v for v in resolved if v.get("type") != "null"]
        nullable = len(non_null) < len(resolved)
        if len(non_null) == 1:
            inner = self.convert({**non_null[0], **_annotations(node)})
        elif {v.get("type") for v in non_null} == {"integer", "string"}:
            inner = {**_pick(node, ("description",)), "x-kubernetes-int-or-string": True}
        elif all(v.get("type") == "object" and "discriminator" in node for v in non_null):
            inner = self._merge_union(non_null, node)
        else:
            # Mixed scalar choices (numbers, strings, booleans): any value.
            inner = {**_pick(node, ("description",)), **_ANY}
        if nullable:
            inner["nullable"] = True
        return inner

    def _merge_union(self, variants: list[dict[str, Any]], node: dict[str, Any]) -> dict[str, Any]:
        """One object with every variant's fields; the tag field lists every tag."""
        properties: dict[str, Any] = {}
        required: set[str] | None = None
        tag = node.get("discriminator", {}).get("propertyName", "type")
        tags: list[Any] = []
        for variant in variants:
            for key, value in variant.get("properties", {}).items():
                # No defaults inside a union: the API server would add, say, log: false
                # to a categorical parameter, which the spec rejects.
                converted = {k: v for k, v in self.convert(value).items() if k != "default"}
                if key == tag:
                    tags.extend(converted.get("enum", []))
                    continue
                properties.setdefault(key, converted)
            need = set(variant.get("required", []))
            required = need if required is None else required & need
        properties[tag] = {"type": "string", "enum": tags}
        out: dict[str, Any] = {"type": "object", "properties": properties}
        out["required"] = sorted((required or set()) | {tag})
        out.update(_pick(node, ("description",)))
        return out

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            node = {**self.defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return node

    @staticmethod
    def _copy_bounds(node: dict[str, Any], out: dict[str, Any]) -> None:
        # JSON Schema 2020 numeric exclusive bounds become OpenAPI v3 boolean flags.
        if "exclusiveMinimum" in node:
            out["minimum"] = node["exclusiveMinimum"]
            out["exclusiveMinimum"] = True
        if "exclusiveMaximum" in node:
            out["maximum"] = node["exclusiveMaximum"]
            out["exclusiveMaximum"] = True


_ANY: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}


def _pick(node: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: node[k] for k in keys if k in node}


def _annotations(node: dict[str, Any]) -> dict[str, Any]:
    return _pick(node, ("description", "default"))


def openapi_schema(model: type[SweepSpec] | type[SweepStatus]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return _Converter(schema).convert(schema)


def build_crd() -> dict[str, Any]:
    spec_schema = openapi_schema(SweepSpec)
    status_schema = openapi_schema(SweepStatus)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {
                "app.kubernetes.io/name": "kubetune",
                "app.kubernetes.io/part-of": "kubetune",
            },
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": list(CATEGORIES),
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A hyperparameter sweep: trials of a fine-tune, searched by Optuna.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


# YAML 1.1 readers (kubectl's go-yaml) take these plain scalars as booleans, so a
# status field named `n` or `s` must be quoted or it turns into `false`.
_YAML11_BOOLS = {"y", "n", "yes", "no", "on", "off", "true", "false"}


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "'" if value.lower() in _YAML11_BOOLS else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_NoAliasDumper.add_representer(str, _represent_str)


def render_crd() -> str:
    header = "# Generated by `kubetune crd` from the spec models. Do not edit by hand.\n"
    body = yaml.dump(build_crd(), Dumper=_NoAliasDumper, sort_keys=False, width=100)
    return header + body
