"""`Accept: application/json;as=Table` responses: what `kubectl get` prints.

Custom resources get their CRD's additionalPrinterColumns (server-side, like the real API
server's table convertor); pods get kubectl's usual columns; everything else NAME and AGE.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from .meta import parse_time
from .resources import ResourceType

_NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace.",
    "priority": 0,
}
_AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "format": "",
    "description": "CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
    "priority": 0,
}


def wants_table(accept: str) -> bool:
    return "as=Table" in (accept or "")


def human_age(timestamp: str | None) -> str:
    """Age as kubectl shows it: 5s, 3m, 2h5m, 4d..."""
    if not timestamp:
        return "<unknown>"
    seconds = int((dt.datetime.now(dt.UTC) - parse_time(timestamp)).total_seconds())
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rem = seconds % 60
        return f"{minutes}m{rem}s" if rem else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60}m" if hours < 8 and minutes % 60 else f"{hours}h"
    return f"{hours // 24}d"


_TOKEN = re.compile(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']+)'\]|\[\"([^\"]+)\"\]")


def jsonpath(obj: Any, path: str) -> Any:
    """The JSONPath subset printer columns use: `.a.b`, `.a[0].b`, `.a['x.y']`."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    value = obj
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return None
        pos = m.end()
        if m.group(2) is not None:
            index = int(m.group(2))
            if not isinstance(value, list) or index >= len(value):
                return None
            value = value[index]
        else:
            key = m.group(1) or m.group(3) or m.group(4)
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
    return value


def _cell(value: Any, column: dict[str, Any]) -> Any:
    if value is None:
        return None
    kind = column.get("type", "string")
    if kind == "date":
        return human_age(str(value))
    if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if kind == "boolean" and isinstance(value, bool):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _columns(rt: ResourceType) -> list[dict[str, Any]]:
    if rt.crd_name is not None:
        cols = [_NAME_COLUMN]
        printer = list(rt.printer_columns) or [
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
        ]
        for col in printer:
            cols.append(
                {
                    "name": col["name"],
                    "type": col.get("type", "string"),
                    "format": col.get("format", ""),
                    "description": col.get("description", ""),
                    "priority": col.get("priority", 0),
                    "jsonPath": col["jsonPath"],
                }
            )
        return cols
    if rt.group == "" and rt.plural == "pods":
        return [
            _NAME_COLUMN,
            _col("Ready", "string"),
            _col("Status", "string"),
            _col("Restarts", "string"),
            _AGE_COLUMN,
            _col("IP", "string", 1),
            _col("Node", "string", 1),
        ]
    if rt.group == "" and rt.plural == "namespaces":
        return [_NAME_COLUMN, _col("Status", "string"), _AGE_COLUMN]
    if rt.plural == "events":
        return [
            _col("Last Seen", "string"),
            _col("Type", "string"),
            _col("Reason", "string"),
            _col("Object", "string"),
            _col("Message", "string"),
        ]
    return [_NAME_COLUMN, _AGE_COLUMN]


def _col(name: str, kind: str, priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": "", "description": "", "priority": priority}


def _pod_cells(pod: dict[str, Any]) -> list[Any]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    shown = status.get("reason") or status.get("phase") or "Pending"
    for s in statuses:
        state = s.get("state") or {}
        if "waiting" in state and state["waiting"].get("reason"):
            shown = state["waiting"]["reason"]
        elif "terminated" in state and shown not in ("Evicted", "NodeLost"):
            shown = state["terminated"].get("reason") or shown
    if pod["metadata"].get("deletionTimestamp"):
        shown = "Terminating"
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(spec.get('containers') or [])}",
        shown,
        str(restarts),
        human_age(pod["metadata"].get("creationTimestamp")),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
    ]


def _row_cells(rt: ResourceType, columns: list[dict[str, Any]], obj: dict[str, Any]) -> list[Any]:
    if rt.crd_name is not None:
        return [obj["metadata"]["name"]] + [
            _cell(jsonpath(obj, c["jsonPath"]), c) for c in columns[1:]
        ]
    if rt.group == "" and rt.plural == "pods":
        return _pod_cells(obj)
    age = human_age(obj["metadata"].get("creationTimestamp"))
    if rt.plural == "events":
        regarding = obj.get("involvedObject") or obj.get("regarding") or {}
        seen = (
            obj.get("lastTimestamp")
            or obj.get("eventTime")
            or obj["metadata"].get("creationTimestamp")
        )
        return [
            human_age(seen),
            obj.get("type", ""),
            obj.get("reason", ""),
            f"{str(regarding.get('kind', '')).lower()}/{regarding.get('name', '')}",
            obj.get("message") or obj.get("note", ""),
        ]
    if rt.group == "" and rt.plural == "namespaces":
        return [obj["metadata"]["name"], (obj.get("status") or {}).get("phase", ""), age]
    return [obj["metadata"]["name"], age]


def table(
    rt: ResourceType, objects: list[dict[str, Any]], resource_version: str, include: str
) -> dict[str, Any]:
    """A meta.k8s.io/v1 Table; each row carries the object as PartialObjectMetadata by default."""
    columns = _columns(rt)
    rows = []
    for obj in objects:
        if include == "Object":
            embedded: Any = obj
        elif include == "None":
            embedded = None
        else:
            embedded = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        row: dict[str, Any] = {"cells": _row_cells(rt, columns, obj)}
        if embedded is not None:
            row["object"] = embedded
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [{k: v for k, v in c.items() if k != "jsonPath"} for c in columns],
        "rows": rows,
    }
