"""Object storage: one global resourceVersion counter and a bounded event history for watches.

Everything here runs on the server's event loop thread, so no locking is needed.
"""

from __future__ import annotations

import asyncio
import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str, str, str]  # (group, plural, namespace or "", name)


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    group: str
    plural: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None  # the previous version, for MODIFIED

    @property
    def namespace(self) -> str:
        ns: str = self.obj["metadata"].get("namespace", "")
        return ns


class Watcher:
    """One open watch stream: events matching its filter are queued for the HTTP handler."""

    def __init__(self, accepts: Callable[[Event], bool]) -> None:
        self.accepts = accepts
        # Events up to this resourceVersion were already sent from the history backlog.
        self.skip_until = 0
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()

    def close(self) -> None:
        self.queue.put_nowait(None)


class Store:
    def __init__(self, history_limit: int = 2000) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.rv = 0
        self.history: deque[Event] = deque(maxlen=history_limit)
        # Watches asking for a resourceVersion older than this get 410 Gone.
        self.compacted_rv = 0
        self.watchers: set[Watcher] = set()
        self.listeners: list[Callable[[Event], None]] = []

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def get(self, key: Key) -> dict[str, Any] | None:
        return self.objects.get(key)

    def items(self, group: str, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        found = [
            obj
            for (g, p, ns, _), obj in self.objects.items()
            if g == group and p == plural and (namespace is None or ns == namespace)
        ]
        return sorted(
            found,
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )

    def put(self, key: Key, obj: dict[str, Any], event_type: str) -> dict[str, Any]:
        """Store a new version (stamped with the next resourceVersion) and publish it."""
        obj = copy.deepcopy(obj)
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        old = self.objects.get(key)
        self.objects[key] = obj
        self._publish(Event(rv, event_type, key[0], key[1], obj, old))
        return obj

    def remove(self, key: Key) -> dict[str, Any]:
        obj = copy.deepcopy(self.objects.pop(key))
        rv = self.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        self._publish(Event(rv, "DELETED", key[0], key[1], obj))
        return obj

    def _publish(self, event: Event) -> None:
        if self.history.maxlen is not None and len(self.history) == self.history.maxlen:
            self.compacted_rv = self.history[0].rv
        self.history.append(event)
        for watcher in list(self.watchers):
            if watcher.accepts(event):
                watcher.queue.put_nowait(event)
        for listener in list(self.listeners):
            listener(event)

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: older watches get 410 Gone."""
        self.compacted_rv = self.rv
        self.history.clear()

    def events_since(self, rv: int) -> list[Event] | None:
        """Events after `rv`, or None when they are no longer all known (410 Gone)."""
        if rv < self.compacted_rv:
            return None
        return [e for e in self.history if e.rv > rv]
