"""The one validator of Prometheus HTTP API answers.

Every answer goes through here before any value is used: anything but the documented shape
(https://prometheus.io/docs/prometheus/latest/querying/api/) becomes MalformedAnswer, or
QueryError / MetricsUnavailable for error answers, with a message from a fixed vocabulary
that never quotes the body. Nothing here raises KeyError, TypeError or ValueError.
"""

import json
import math
import re
from typing import Any

from kubetune.metrics.fetch import Answer, status_text
from kubetune.metrics.types import MalformedAnswer, MetricsUnavailable, QueryError

Labels = dict[str, str]
# Prometheus's documented errorType values: the only part of an error answer we repeat.
ERROR_TYPES = frozenset(
    {
        "timeout",
        "canceled",
        "execution",
        "bad_data",
        "internal",
        "unavailable",
        "not_found",
        "not_acceptable",
    }
)
# Prometheus writes sample values as Go floats: digits, exponent, NaN, +Inf, -Inf.
_FLOAT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|[+-]?Inf|NaN", re.ASCII)
_MAX_SHOWN_QUERY = 200


def api_data(answer: Answer, where: str, query: str | None = None) -> dict[str, Any]:
    """The `data` object of a successful answer.

    QueryError when Prometheus refused the query (HTTP 400/422), MetricsUnavailable for any
    other error status, MalformedAnswer for a success without the success shape.
    """
    body = _json(answer.body)
    if answer.status in (400, 422):
        error_type = body.get("errorType") if isinstance(body, dict) else None
        kind = f", {error_type}" if error_type in ERROR_TYPES else ""
        shown = _shown(query)
        raise QueryError(f"{where} rejected the query {shown}({status_text(answer.status)}{kind})")
    if answer.status != 200:
        raise MetricsUnavailable(f"{where} answered {status_text(answer.status)}")
    if not isinstance(body, dict):
        raise MalformedAnswer(f"{where}: the answer is not a JSON object")
    if body.get("status") != "success":
        raise MalformedAnswer(f"{where}: HTTP 200 without status success")
    data = body.get("data")
    if not isinstance(data, dict):
        raise MalformedAnswer(f"{where}: the answer has no data object")
    return data


def instant_result(data: dict[str, Any], where: str) -> list[tuple[Labels, float]]:
    """(labels, value) per series of an instant query (a vector, or a scalar as one
    unlabelled series); NaN samples left out."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar":
        _, value = _sample(result, where, "data.result")
        return [] if math.isnan(value) else [({}, value)]
    if kind != "vector":
        raise MalformedAnswer(f"{where}: expected a vector or scalar result, got {_kind(kind)}")
    found = []
    for index, series in enumerate(_list(result, where, "data.result")):
        at = f"data.result[{index}]"
        series = _object(series, where, at)
        labels = _labels(series.get("metric", {}), where, f"{at}.metric")
        _, value = _sample(series.get("value"), where, f"{at}.value")
        if not math.isnan(value):
            found.append((labels, value))
    return found


def range_result(
    data: dict[str, Any], where: str
) -> list[tuple[Labels, list[tuple[float, float]]]]:
    """(labels, [(timestamp, value), ...]) per series of a range query."""
    kind = data.get("resultType")
    if kind != "matrix":
        raise MalformedAnswer(f"{where}: expected a matrix result, got {_kind(kind)}")
    found = []
    for index, series in enumerate(_list(data.get("result"), where, "data.result")):
        at = f"data.result[{index}]"
        series = _object(series, where, at)
        labels = _labels(series.get("metric", {}), where, f"{at}.metric")
        values = _list(series.get("values", []), where, f"{at}.values")
        points = [_sample(v, where, f"{at}.values[{i}]") for i, v in enumerate(values)]
        found.append((labels, points))
    return found


def _json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None


def _shown(query: str | None) -> str:
    """The query (the sweep's own PromQL, not the answer), bounded."""
    if query is None:
        return ""
    text = query if len(query) <= _MAX_SHOWN_QUERY else query[:_MAX_SHOWN_QUERY] + "..."
    return f"{text!r} "


def _kind(value: Any) -> str:
    return repr(value) if value in ("matrix", "vector", "scalar", "string") else "something else"


def _object(value: Any, where: str, at: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedAnswer(f"{where}: {at} is not an object")
    return value


def _list(value: Any, where: str, at: str) -> list[Any]:
    if not isinstance(value, list):
        raise MalformedAnswer(f"{where}: {at} is not a list")
    return value


def _labels(value: Any, where: str, at: str) -> Labels:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise MalformedAnswer(f"{where}: {at} is not an object of string labels")
    return dict(value)


def _sample(value: Any, where: str, at: str) -> tuple[float, float]:
    """[<unix time>, "<value>"] as (timestamp, value)."""
    if not isinstance(value, list) or len(value) != 2:
        raise MalformedAnswer(f"{where}: {at} is not a [time, value] pair")
    stamp, text = value
    if isinstance(stamp, bool) or not isinstance(stamp, int | float) or not math.isfinite(stamp):
        raise MalformedAnswer(f"{where}: {at} has no numeric timestamp")
    if not isinstance(text, str) or not _FLOAT.fullmatch(text):
        raise MalformedAnswer(f"{where}: {at} has no numeric value")
    return float(stamp), float(text)
