"""The operator's few threads for engine work (accept, decide), shared by every sweep.

Engine work is CPU-bound Python: Optuna's ask and tell, and with the default algorithm (auto)
a Gaussian-process fit on torch. Under the GIL more threads run it no faster; they only hold
more of it in flight at once, each GP ask with its own torch working memory. asyncio's
default executor (min(32, cpus + 4) threads) let every sweep's ask run together and set the
operator's peak memory by the number of sweeps; this pool caps it at a few asks.
"""

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class EnginePool:
    """Runs engine calls off the event loop, at most ``threads`` at once; the rest wait in
    line, so the loop stays free for watches, other sweeps' I/O and /healthz."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError(f"engine threads: must be at least 1, got {threads}")
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="kubetune-engine")

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` on one of the pool's threads (as asyncio.to_thread does,
        with the caller's context variables)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    def shutdown(self) -> None:
        """Stop taking work; calls not started are cancelled, one in flight finishes on its own
        (a thread cannot be interrupted), without blocking the event loop."""
        self._executor.shutdown(wait=False, cancel_futures=True)
