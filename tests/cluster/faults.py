"""Fault injection and request counting, for reliability tests of API clients.

Set from the test thread, read by the server thread: plain attribute writes plus a lock
around the counters keep it consistent.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")


@dataclass
class Faults:
    """What the API server does wrong, and how many requests it saw.

    - `error_ratio`: share of requests answered 500 InternalError.
    - `conflict_ratio`: share of writes answered 409 Conflict.
    - `latency`: seconds added before answering any request.
    - `only`: restrict the faults above to requests for which `only(verb, resource)` is true.
    - `fail_next(n, code)`: answer the next n matching requests with `code`, deterministically.
    - `drop_watches()`: close every open watch stream now (clients must reconnect).
    - `count(verb, resource)`: requests seen, by verb (get, list, watch, create, update, patch,
      delete) and resource (`pods`, `hyperparametersweeps.kubetune.dev`, ...).
    """

    error_ratio: float = 0.0
    conflict_ratio: float = 0.0
    latency: float = 0.0
    only: Callable[[str, str], bool] | None = None
    seed: int = 0
    _forced: list[tuple[int, Callable[[str, str], bool] | None]] = field(default_factory=list)
    _counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _drop: Callable[[], None] | None = None
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def reset(self) -> None:
        with self._lock:
            self.error_ratio = self.conflict_ratio = self.latency = 0.0
            self.only = None
            self._forced.clear()
            self._counts.clear()

    def fail_next(
        self, n: int = 1, code: int = 500, only: Callable[[str, str], bool] | None = None
    ) -> None:
        with self._lock:
            self._forced += [(code, only)] * n

    def drop_watches(self) -> None:
        if self._drop is not None:
            self._drop()

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (v, r), n in self._counts.items()
                if (verb is None or v == verb) and (resource is None or r == resource)
            )

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def on_request(self, verb: str, resource: str) -> int | None:
        """Count the request; return a status code to fail it with, or None to serve it."""
        with self._lock:
            self._counts[(verb, resource)] += 1
            for i, (code, only) in enumerate(self._forced):
                if only is None or only(verb, resource):
                    del self._forced[i]
                    return code
            if self.only is not None and not self.only(verb, resource):
                return None
            if self.error_ratio and self._rng.random() < self.error_ratio:
                return 500
            if (
                verb in WRITE_VERBS
                and self.conflict_ratio
                and self._rng.random() < (self.conflict_ratio)
            ):
                return 409
        return None
