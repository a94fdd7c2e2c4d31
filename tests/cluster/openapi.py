"""OpenAPI v3 documents: enough for `kubectl explain` and kubectl's check that the server
supports server-side field validation (the `fieldValidation` parameter on PATCH operations).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .resources import Registry, ResourceType

_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(rt: ResourceType) -> str:
    if rt.crd_name is not None:
        reverse = ".".join(reversed(rt.group.split(".")))
        return f"{reverse}.{rt.version}.{rt.kind}"
    group = rt.group.split(".")[0] if rt.group else "core"
    return f"io.k8s.api.{group}.{rt.version}.{rt.kind}"


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _param(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": {"type": kind, "uniqueItems": True}}


# The real server also lists strategic-merge-patch for built-in kinds; kubectl then computes
# patches from the OpenAPI schema, which these documents do not carry in full. Without it
# kubectl uses its compiled-in types instead, with the same patch as a result.
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)


def _paths(rt: ResourceType) -> dict[str, Any]:
    base = "/" + _gv_path(rt.group, rt.version)
    ns = "/namespaces/{namespace}" if rt.namespaced else ""
    ref = {"$ref": f"#/components/schemas/{_schema_name(rt)}"}
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    ext = {"x-kubernetes-group-version-kind": _gvk(rt)}
    write_params = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]
    item = {
        "get": {"operationId": f"read{rt.kind}", "responses": ok, **ext},
        "put": {
            "operationId": f"replace{rt.kind}",
            "parameters": write_params,
            "requestBody": {"content": {"*/*": {"schema": ref}}},
            "responses": ok,
            **ext,
        },
        "patch": {
            "operationId": f"patch{rt.kind}",
            "parameters": [*write_params, _param("force", "boolean")],
            "requestBody": {"content": {t: {"schema": {"type": "object"}} for t in PATCH_TYPES}},
            "responses": ok,
            **ext,
        },
        "delete": {"operationId": f"delete{rt.kind}", "responses": ok, **ext},
    }
    collection = {
        "get": {"operationId": f"list{rt.kind}", "responses": ok, **ext},
        "post": {
            "operationId": f"create{rt.kind}",
            "parameters": write_params,
            "requestBody": {"content": {"*/*": {"schema": ref}}},
            "responses": ok,
            **ext,
        },
    }
    return {f"{base}{ns}/{rt.plural}": collection, f"{base}{ns}/{rt.plural}/{{name}}": item}


def _component(rt: ResourceType) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "object",
        "description": f"{rt.kind} ({rt.api_version})",
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned "
                "schema of this representation of an object.",
            },
            "kind": {
                "type": "string",
                "description": "Kind is a string value representing the "
                "REST resource this object represents.",
            },
            "metadata": {
                "allOf": [{"$ref": f"#/components/schemas/{_OBJECT_META}"}],
                "description": "Standard object's metadata.",
            },
        },
    }
    if rt.schema:
        body = json.loads(json.dumps(rt.schema))
        body.setdefault("properties", {})["metadata"] = {
            "allOf": [{"$ref": f"#/components/schemas/{_OBJECT_META}"}],
            "description": "Standard object's metadata.",
        }
    elif rt.schema is None:
        body["x-kubernetes-preserve-unknown-fields"] = True
    body["x-kubernetes-group-version-kind"] = [_gvk(rt)]
    return body


def _object_meta() -> dict[str, Any]:
    strings = (
        "name",
        "namespace",
        "generateName",
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
    )
    props: dict[str, Any] = {s: {"type": "string"} for s in strings}
    props["labels"] = {"type": "object", "additionalProperties": {"type": "string"}}
    props["annotations"] = {"type": "object", "additionalProperties": {"type": "string"}}
    props["finalizers"] = {"type": "array", "items": {"type": "string"}}
    props["generation"] = {"type": "integer", "format": "int64"}
    return {
        "type": "object",
        "description": "ObjectMeta is metadata that all persisted resources must have.",
        "properties": props,
    }


def group_version_doc(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {_OBJECT_META: _object_meta()}
    for rt in types:
        paths.update(_paths(rt))
        schemas[_schema_name(rt)] = _component(rt)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kubetune test cluster)", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def root_doc(registry: Registry) -> dict[str, Any]:
    paths = {}
    pairs = {(rt.group, rt.version) for rt in registry.all()}
    for group, version in sorted(pairs):
        doc = group_version_doc(registry, group, version)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        gv = _gv_path(group, version)
        paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return {"paths": paths}
