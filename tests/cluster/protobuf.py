"""Kubernetes protobuf request bodies, for the few kinds kubectl sends that way.

kubectl's typed client posts `kubectl create namespace|secret|configmap|serviceaccount` as
`application/vnd.kubernetes.protobuf`: the magic `k8s\\0`, then a runtime.Unknown holding
TypeMeta and the object's own message. Only those kinds (and the ObjectMeta fields they
carry) are decoded; anything else is answered 415 naming the kind.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from .errors import ApiError

MAGIC = b"k8s\x00"
Fields = list[tuple[int, Any]]


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(buf: bytes) -> Fields:
    """(field number, value) pairs: ints for varints, bytes for length-delimited."""
    out: Fields = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            out.append((number, buf[pos : pos + 8]))
            pos += 8
        elif wire == 5:
            out.append((number, buf[pos : pos + 4]))
            pos += 4
        else:
            raise ApiError(400, f"unsupported protobuf wire type {wire}")
    return out


def _text(value: bytes) -> str:
    return value.decode()


def _map(entries: list[bytes], as_bytes: bool = False) -> dict[str, str]:
    out = {}
    for entry in entries:
        kv = dict(fields(entry))
        key = _text(kv.get(1, b""))
        raw = kv.get(2, b"")
        out[key] = base64.b64encode(raw).decode() if as_bytes else _text(raw)
    return out


def _all(parsed: Fields, number: int) -> list[Any]:
    return [v for n, v in parsed if n == number]


def _one(parsed: Fields, number: int) -> Any:
    found = _all(parsed, number)
    return found[-1] if found else None


def _metadata(buf: bytes) -> dict[str, Any]:
    parsed = fields(buf)
    md: dict[str, Any] = {}
    for number, key in (
        (1, "name"),
        (2, "generateName"),
        (3, "namespace"),
        (6, "resourceVersion"),
        (5, "uid"),
    ):
        value = _one(parsed, number)
        if value:
            md[key] = _text(value)
    if labels := _map(_all(parsed, 11)):
        md["labels"] = labels
    if annotations := _map(_all(parsed, 12)):
        md["annotations"] = annotations
    if finalizers := [_text(v) for v in _all(parsed, 14)]:
        md["finalizers"] = finalizers
    return md


def _namespace(parsed: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    spec = _one(parsed, 2)
    if spec:
        finalizers = [_text(v) for v in _all(fields(spec), 1)]
        if finalizers:
            obj["spec"] = {"finalizers": finalizers}
    return obj


def _configmap(parsed: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if data := _map(_all(parsed, 2)):
        obj["data"] = data
    if binary := _map(_all(parsed, 3), as_bytes=True):
        obj["binaryData"] = binary
    if _one(parsed, 4) is not None:
        obj["immutable"] = bool(_one(parsed, 4))
    return obj


def _secret(parsed: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if data := _map(_all(parsed, 2), as_bytes=True):
        obj["data"] = data
    if _one(parsed, 3):
        obj["type"] = _text(_one(parsed, 3))
    if string_data := _map(_all(parsed, 4)):
        obj["stringData"] = string_data
    if _one(parsed, 5) is not None:
        obj["immutable"] = bool(_one(parsed, 5))
    return obj


def _service_account(parsed: Fields) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    if _one(parsed, 4) is not None:
        obj["automountServiceAccountToken"] = bool(_one(parsed, 4))
    return obj


DECODERS: dict[str, Callable[[Fields], dict[str, Any]]] = {
    "Namespace": _namespace,
    "ConfigMap": _configmap,
    "Secret": _secret,
    "ServiceAccount": _service_account,
}


def decode(raw: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object of a supported kind."""
    if not raw.startswith(MAGIC):
        raise ApiError(400, "protobuf body without the k8s magic prefix")
    unknown = fields(raw[len(MAGIC) :])
    type_meta = fields(_one(unknown, 1) or b"")
    api_version = _text(_one(type_meta, 1) or b"")
    kind = _text(_one(type_meta, 2) or b"")
    if kind not in DECODERS:
        raise ApiError(
            415,
            f"the test cluster decodes protobuf only for {sorted(DECODERS)}, not {kind!r}; "
            "send JSON",
        )
    parsed = fields(_one(unknown, 2) or b"")
    obj = {"apiVersion": api_version, "kind": kind, "metadata": _metadata(_one(parsed, 1) or b"")}
    obj.update(DECODERS[kind](parsed))
    return obj
