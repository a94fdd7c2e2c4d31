"""budget.maxGpuHours: what the trials spent, and whether one more trial fits.

A trial's cost is the GPU-seconds of its ended attempts (each attempt's running time
counted once). A trial is started only if the GPU-seconds spent so far, plus the mean cost
of the finished trials for every trial in flight and the one to start, stay within the
budget; before any trial has finished there is no mean, and starting is allowed. Trials
already running are never stopped for the budget: their GPU time is spent either way, and
their results are what it bought.
"""

from collections.abc import Iterable, Sequence

from kubetune.engine.summary import FINISHED, IN_FLIGHT, Trial

SECONDS_PER_HOUR = 3600.0


def spent_seconds(trials: Iterable[Trial]) -> int:
    return sum(t.gpu_seconds for t in trials)


def mean_seconds(trials: Iterable[Trial]) -> float | None:
    """Mean GPU-seconds of the finished trials; None before any finished."""
    costs = [t.gpu_seconds for t in trials if t.state in FINISHED]
    return sum(costs) / len(costs) if costs else None


def may_start(max_gpu_hours: float | None, trials: Sequence[Trial]) -> bool:
    """Whether one more trial (new or requeued) fits in the budget at the mean cost."""
    if max_gpu_hours is None:
        return True
    budget = max_gpu_hours * SECONDS_PER_HOUR
    spent = spent_seconds(trials)
    if spent >= budget:
        return False
    mean = mean_seconds(trials)
    if mean is None:
        return True
    in_flight = sum(1 for t in trials if t.state in IN_FLIGHT)
    return spent + (in_flight + 1) * mean <= budget


def hours(seconds: float) -> float:
    """GPU-hours as status and metrics show them: to 0.0001 h (under a second)."""
    return round(seconds / SECONDS_PER_HOUR, 4)
