"""Engine work of all sweeps runs on the operator's few engine threads: never more at once.

With asyncio's default executor every sweep's GP ask could run together, each holding its own
torch buffers, so the operator's peak memory grew with the number of sweeps.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Mapping
from typing import Any, cast

import pytest

from kubetune.operator.config import OperatorConfig
from kubetune.operator.effects import Effects, MetricsReading
from kubetune.operator.engine_pool import EnginePool
from kubetune.operator.kube import KubeClient
from kubetune.operator.metrics import OperatorMetrics
from kubetune.operator.pod_state import PodView
from kubetune.operator.reconcile import SweepReconciler
from kubetune.operator.runtime import SweepRuntime

SWEEPS = 12
# Long enough that every sweep's call is queued or running while the first ones still run.
CALL_SECONDS = 0.05


class InFlight:
    """How many engine calls run at this moment, and the most there ever were."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0
        self.calls = 0

    def __enter__(self) -> None:
        with self._lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self.now -= 1


class SlowReconciler(SweepReconciler):
    """A reconciler whose engine work takes a while (as a GP ask does) and is counted."""

    def __init__(self, name: str, in_flight: InFlight) -> None:
        super().__init__("ns", name, None, default_image=None)
        self.in_flight = in_flight

    def accept(self, body: Mapping[str, Any]) -> bool:
        with self.in_flight:
            time.sleep(CALL_SECONDS)  # releases the GIL, as torch's kernels do
        return False

    def decide(self, pods: Mapping[str, PodView], metrics: MetricsReading) -> Effects:
        with self.in_flight:
            time.sleep(CALL_SECONDS)
        return Effects(status={"phase": "Pending"})


class StatusSink:
    """The one API call a pass of a fresh sweep makes: its status write."""

    async def patch_sweep_status(
        self, namespace: str, name: str, status: dict[str, Any], version: str | None
    ) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": f"{name}-2"}}


def _ignore(_: object) -> None:
    pass


async def _passes(pool: EnginePool, in_flight: InFlight) -> list[SweepRuntime]:
    kube = cast(KubeClient, StatusSink())
    config = OperatorConfig(metrics_port=None)
    metrics = OperatorMetrics()
    runtimes = []
    for i in range(SWEEPS):
        runtime = SweepRuntime("ns", f"s{i}", None, kube, config, pool, metrics)
        runtime.reconciler = SlowReconciler(f"s{i}", in_flight)
        runtimes.append(runtime)
    await asyncio.gather(
        *(
            r.reconcile_once({"metadata": {"resourceVersion": "1"}}, [], _ignore, _ignore)
            for r in runtimes
        )
    )
    return runtimes


@pytest.mark.parametrize("threads", [1, 2])
def test_many_sweeps_engine_calls_never_run_more_than_the_pool_at_once(threads: int) -> None:
    in_flight = InFlight()
    pool = EnginePool(threads)
    try:
        runtimes = asyncio.run(_passes(pool, in_flight))
    finally:
        pool.shutdown()
    assert in_flight.calls == 2 * SWEEPS, "every sweep's accept and decide ran"
    assert in_flight.most == threads
    assert all(r.last_patched == {"phase": "Pending"} for r in runtimes), "every pass completed"


def test_the_event_loop_stays_free_while_engine_calls_wait() -> None:
    """A queued engine call blocks neither the loop nor other coroutines (watches, /healthz)."""
    in_flight = InFlight()
    pool = EnginePool(1)
    ticks: list[float] = []

    async def scenario() -> None:
        passes = asyncio.ensure_future(_passes(pool, in_flight))
        while not passes.done():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)
        await passes

    try:
        asyncio.run(scenario())
    finally:
        pool.shutdown()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    # 24 calls of 50 ms one at a time: over a second, during which the loop kept ticking.
    assert len(ticks) > 20
    assert max(gaps) < 0.5, max(gaps)


def test_a_pool_of_no_threads_is_refused() -> None:
    with pytest.raises(ValueError, match="engine threads: must be at least 1, got 0"):
        EnginePool(0)


def test_shutdown_cancels_calls_not_started() -> None:
    pool = EnginePool(1)
    release = threading.Event()

    async def scenario() -> tuple[bool, BaseException | None]:
        first = asyncio.ensure_future(pool.run(release.wait, 5))
        queued = asyncio.ensure_future(pool.run(lambda: "ran"))
        await asyncio.sleep(0.05)
        pool.shutdown()
        release.set()
        results = await asyncio.gather(first, queued, return_exceptions=True)
        error = results[1] if isinstance(results[1], BaseException) else None
        return bool(results[0]), error

    finished, error = asyncio.run(scenario())
    assert finished, "the call in flight finished"
    assert isinstance(error, asyncio.CancelledError), "the queued call never ran"
