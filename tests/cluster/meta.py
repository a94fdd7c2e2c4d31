"""Object metadata rules: names, generateName, timestamps, uids and managedFields."""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
import uuid
from typing import Any

from .errors import cause

_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
# The alphabet Kubernetes uses for generateName suffixes (no vowels, no look-alikes).
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def controller_ref(owner: dict[str, Any]) -> dict[str, Any]:
    """The ownerReference a controller puts on what it makes for ``owner``: garbage
    collection deletes the dependent with its owner, and only one controller owns it."""
    md = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": md["name"],
        "uid": md["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def new_uid() -> str:
    return str(uuid.uuid4())


def generated_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_SUFFIX_CHARS) for _ in range(5))


def name_causes(name: str, *, dns_label: bool = False) -> list[dict[str, str]]:
    """Why `name` is not a valid object name, in the API server's words ([] when valid)."""
    if dns_label:
        if len(name) <= 63 and re.fullmatch(_LABEL, name):
            return []
        return [
            cause(
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower '
                "case alphanumeric characters or '-', and must start and end with an "
                "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                f"validation is '{_LABEL}')",
            )
        ]
    if len(name) <= 253 and re.fullmatch(_SUBDOMAIN, name):
        return []
    return [
        cause(
            "metadata.name",
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower '
            "case alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'example.com', regex used for validation is "
            f"'{_SUBDOMAIN}')",
        )
    ]


def manager_from(user_agent: str, field_manager: str | None) -> str:
    """The field manager the API server would record: `fieldManager` or the User-Agent prefix."""
    if field_manager:
        return field_manager
    return (user_agent or "unknown").split("/")[0] or "unknown"


def record_manager(meta: dict[str, Any], manager: str, operation: str, api_version: str) -> None:
    """Keep one managedFields entry per (manager, operation), stamped with the write time.

    Field ownership (fieldsV1 contents) is not tracked: no client we test reads it.
    """
    entries = [
        e
        for e in meta.get("managedFields") or []
        if not (e.get("manager") == manager and e.get("operation") == operation)
    ]
    entries.append(
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": {},
        }
    )
    meta["managedFields"] = entries


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal apart from resourceVersion and managedFields timestamps."""

    def strip(o: dict[str, Any]) -> dict[str, Any]:
        o = copy.deepcopy(o)
        o["metadata"].pop("resourceVersion", None)
        o["metadata"].pop("managedFields", None)
        o.pop("apiVersion", None)
        o.pop("kind", None)
        return o

    return strip(a) == strip(b)
