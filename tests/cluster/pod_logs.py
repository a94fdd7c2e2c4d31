"""The `pods/log` subresource over a container's log file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path


def read_log(path: Path, query: Mapping[str, str]) -> bytes:
    """The log so far, cut by `tailLines` and `limitBytes` as the kubelet cuts it."""
    data = path.read_bytes()
    if "tailLines" in query:
        n = int(query["tailLines"])
        data = b"".join(data.splitlines(keepends=True)[-n:]) if n else b""
    if "limitBytes" in query:
        data = data[: int(query["limitBytes"])]
    return data


async def stream_log(
    path: Path, query: Mapping[str, str], running: Callable[[], bool]
) -> AsyncIterator[bytes]:
    """What is there, then (with `follow=true`) what gets written until the container ends."""
    yield read_log(path, query)
    if query.get("follow") != "true":
        return
    offset = path.stat().st_size
    while True:
        size = path.stat().st_size
        if size > offset:
            with open(path, "rb") as f:
                f.seek(offset)
                chunk = f.read(size - offset)
            offset = size
            yield chunk
            continue
        if not running():
            return
        await asyncio.sleep(0.1)
