"""Which fields built-in kinds have, read from the official kubernetes client's models.

A real API server decodes built-in objects into typed structs: unknown fields are dropped,
with a warning, or refused under `fieldValidation=Strict` (kubectl's default). The client's
generated models (`openapi_types`, `attribute_map`) carry the same field names, so a typo in
a pod manifest fails here as it would on a real cluster.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# (group, plural) -> model class name in kubernetes.client.models
MODELS = {
    ("", "pods"): "V1Pod",
    ("batch", "jobs"): "V1Job",
    ("", "namespaces"): "V1Namespace",
    ("", "configmaps"): "V1ConfigMap",
    ("", "secrets"): "V1Secret",
    ("", "serviceaccounts"): "V1ServiceAccount",
    ("", "nodes"): "V1Node",
    ("", "events"): "CoreV1Event",
    ("events.k8s.io", "events"): "EventsV1Event",
    ("coordination.k8s.io", "leases"): "V1Lease",
    ("apiextensions.k8s.io", "customresourcedefinitions"): "V1CustomResourceDefinition",
}
_SCALARS = {"str", "int", "bool", "float", "object", "datetime", "date", "bytes"}
_LIST = re.compile(r"^List\[(.+)\]$")
_DICT = re.compile(r"^Dict\[str, (.+)\]$")


@functools.cache
def _fields(model: str) -> dict[str, str]:
    """JSON field name -> type string of a model."""
    from kubernetes.client import models

    cls = getattr(models, model)
    return {cls.attribute_map[attr]: kind for attr, kind in cls.openapi_types.items()}


def prune_unknown(value: Any, kind: str, path: str = "") -> tuple[Any, list[str]]:
    """`value` without fields the model does not have, and their paths."""
    if kind in _SCALARS:
        return value, []
    if m := _LIST.match(kind):
        if not isinstance(value, list):
            return value, []
        out, dropped = [], []
        for i, item in enumerate(value):
            kept, sub = prune_unknown(item, m.group(1), f"{path}[{i}]")
            out.append(kept)
            dropped += sub
        return out, dropped
    if m := _DICT.match(kind):
        if not isinstance(value, dict):
            return value, []
        out_map, dropped = {}, []
        for key, item in value.items():
            out_map[key], sub = prune_unknown(item, m.group(1), f"{path}.{key}" if path else key)
            dropped += sub
        return out_map, dropped
    if not isinstance(value, dict):
        return value, []
    fields = _fields(kind)
    kept_fields: dict[str, Any] = {}
    dropped = []
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        if key not in fields:
            dropped.append(child)
            continue
        kept_fields[key], sub = prune_unknown(item, fields[key], child)
        dropped += sub
    return kept_fields, dropped


def model_of(group: str, plural: str) -> str | None:
    return MODELS.get((group, plural))
