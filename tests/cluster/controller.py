"""What the simulated controllers (jobs.py, training.py, kueue.py) share: a level-triggered
loop that runs soon after any change to the kinds a controller watches, and the rule that
a conflict means "try again on the next event" while any other error is a simulation bug
the fixture reports (`errors`)."""

from __future__ import annotations

import asyncio
import copy
import functools
from collections.abc import Callable, Iterable
from typing import Any

from .api import Api
from .errors import ApiError
from .lifecycle import DeleteOptions
from .store import Event


class Controller:
    # (group, plural) of the kinds whose events make the controller reconcile.
    watches: frozenset[tuple[str, str]] = frozenset()

    def __init__(self, api: Api) -> None:
        self.api = api
        self.errors: list[str] = []
        self._pending = False
        self._started = False
        api.store.listeners.append(self._on_event)

    def start(self) -> None:
        self._started = True
        self._kick()

    def stop(self) -> None:
        self._started = False

    def _on_event(self, event: Event) -> None:
        if (event.group, event.plural) in self.watches:
            self._kick()

    def _kick(self) -> None:
        """Reconcile soon: never inside a store write (listeners run synchronously)."""
        if self._pending or not self._started:
            return
        self._pending = True
        asyncio.get_running_loop().call_soon(self._reconcile)

    def _reconcile(self) -> None:
        self._pending = False
        if self._started:
            self.reconcile()

    def reconcile(self) -> None:
        raise NotImplementedError

    def remove(self, resource: tuple[str, str, str], item: dict[str, Any]) -> None:
        """Delete what this controller made (background propagation); already gone is done."""
        md = item["metadata"]
        try:
            self.api.delete(
                self.api.resource(*resource),
                md["namespace"],
                md["name"],
                DeleteOptions(propagation="Background"),
            )
        except ApiError as error:
            if error.code != 404:
                raise

    def attempt(self, what: str, sync: Callable[[], Any]) -> None:
        """Run one sync step; a 409 conflict waits for the next event, other errors are kept."""
        try:
            sync()
        except ApiError as error:
            if error.code == 409:  # a conflict: the next event brings the newer object
                self._kick()
                return
            self.errors.append(f"{what}: {error!r}")
        except Exception as error:  # a bug of the simulation: the fixture reports it
            self.errors.append(f"{what}: {error!r}")

    def each(
        self, plural: str, items: Iterable[dict[str, Any]], sync: Callable[[Any], Any]
    ) -> None:
        """sync(copy of item) for every item, each on its own (one failure stops no other)."""
        for item in items:
            name = item["metadata"]["name"]
            self.attempt(f"{plural} {name}", functools.partial(sync, copy.deepcopy(item)))
