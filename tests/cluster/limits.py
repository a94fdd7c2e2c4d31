"""Size limits a real control plane puts on writes.

- kube-apiserver refuses a write whose body exceeds 3 MiB before decoding it:
  413 RequestEntityTooLarge, "Request entity too large: limit is 3145728".
- etcd refuses to store a value over its --max-request-bytes (1.5 MiB by default); the API
  server passes that on: 413 RequestEntityTooLarge, "etcdserver: request is too large".
  (Kubernetes before 1.11 answered 500 for it.) Custom resources are stored as JSON, so
  their stored size is their JSON size; built-ins are stored as protobuf, a little smaller,
  which the simulation ignores (it measures compact JSON for every kind).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import ApiError

MAX_REQUEST_BODY = 3 * 1024 * 1024
MAX_STORED_OBJECT = 1536 * 1024  # etcd's default --max-request-bytes: 1572864


def check_body(raw: bytes) -> None:
    if len(raw) > MAX_REQUEST_BODY:
        raise ApiError(413, f"Request entity too large: limit is {MAX_REQUEST_BODY}")


def stored_size(obj: dict[str, Any]) -> int:
    return len(json.dumps(obj, separators=(",", ":")).encode())


def check_stored(obj: dict[str, Any]) -> None:
    if stored_size(obj) > MAX_STORED_OBJECT:
        raise ApiError(413, "etcdserver: request is too large")
