"""Bounded HTTP GETs for the metrics sources.

Whoever answers (a Prometheus, a trial's /metrics) is not trusted: the body is read up to a
cap, uncompressed only, and no error message ever carries any of it. Errors name the
exception class or the HTTP status with its standard phrase: a fixed vocabulary.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpx

from kubetune.metrics.types import MalformedAnswer, MetricsUnavailable

# Far above a sweep's answers (a few KiB per trial), far below what hurts the operator.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def status_text(code: int) -> str:
    """`HTTP 503 Service Unavailable`: the standard phrase, never the server's own."""
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


async def bounded_get(
    client: httpx.AsyncClient,
    url: str,
    what: str,
    params: Mapping[str, Any] | None = None,
    limit: int = MAX_ANSWER_BYTES,
) -> Answer:
    """GET url; MetricsUnavailable when it cannot be reached, MalformedAnswer when the body
    is compressed or larger than limit. `what` names the source in messages."""
    # identity: a compressed body could inflate far past the cap before it is counted.
    headers = {"Accept-Encoding": "identity"}
    try:
        async with client.stream("GET", url, params=params, headers=headers) as response:
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise MalformedAnswer(f"{what}: answered with a compressed body")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise MalformedAnswer(f"{what}: answer larger than {limit} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > limit:
                    raise MalformedAnswer(f"{what}: answer larger than {limit} bytes")
                chunks.append(chunk)
            return Answer(response.status_code, b"".join(chunks))
    except httpx.HTTPError as error:
        # The class name only: some transport errors quote what the server sent.
        raise MetricsUnavailable(f"{what} unreachable: {type(error).__name__}") from error
