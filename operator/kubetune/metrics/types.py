"""What a metrics source returns, and the two ways reading it can go wrong."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kubetune import metric_names

short_name = metric_names.short_name

# Short names (kubetune_trial_ prefix removed) of the progress series every trainer serves.
STEP = short_name(metric_names.STEP)
EVAL_STEP = short_name(metric_names.EVAL_STEP)
DONE = short_name(metric_names.TRIAL_DONE)


class MetricsError(Exception):
    """Base of every metrics-source error."""


class MetricsUnavailable(MetricsError):
    """The source cannot be reached or answered with a server error.

    Says nothing about any trial: callers keep their trials as they are and retry,
    unlike an absent series, which only means that a trial has not reported yet.
    """


class QueryError(MetricsError):
    """The source rejected the query itself, e.g. a custom PromQL template with a typo."""


class MalformedAnswer(MetricsError):
    """The source answered, but not with what was asked for (wrong shape, not JSON, too big).

    Like MetricsUnavailable it says nothing about any trial: a condition, and a retry.
    """


@dataclass(frozen=True)
class TrialReading:
    """The latest values one trial reported, by short metric name (eval_loss, step, ...)."""

    values: Mapping[str, float] = field(default_factory=dict)

    @property
    def step(self) -> int | None:
        """Training step the trial has reached."""
        return _as_int(self.values.get(STEP))

    @property
    def eval_step(self) -> int | None:
        """Step at which the eval_* values were measured (None before the first evaluation)."""
        return _as_int(self.values.get(EVAL_STEP))

    @property
    def measured_at(self) -> int | None:
        """Step of the latest eval_* values: eval_step, or step for trainers without it."""
        return self.eval_step if self.eval_step is not None else self.step

    @property
    def done(self) -> bool:
        """The trial has set its final values."""
        return self.values.get(DONE, 0.0) >= 1.0

    def value(self, metric: str) -> float | None:
        """A metric by the user's name (val/loss) or its series name; None when absent."""
        return self.values.get(metric_names.reading_key(metric))

    def evaluation(self, metric: str) -> tuple[int, float] | None:
        """The latest (step, value) evaluation of metric, or None before the first one.

        The step is eval_step (step for trainers without it). A step of 0 means no
        evaluation yet: Prometheus gauges start at 0, so a trainer serving its gauges
        before evaluating shows eval_loss 0 at eval_step 0, which is no measurement.
        """
        value = self.value(metric)
        at = self.measured_at
        if value is None or at is None or at <= 0:
            return None
        return at, value

    def evaluations(self, metrics: Sequence[str]) -> tuple[int, list[float]] | None:
        """The latest evaluation of every metric in ``metrics`` at once (an intermediate
        point of a multi-objective sweep), or None until each has one."""
        points = [self.evaluation(metric) for metric in metrics]
        found = [point for point in points if point is not None]
        if not found or len(found) != len(points):
            return None
        # One reading, one measured_at: every point has the same step.
        return found[0][0], [value for _, value in found]


def _as_int(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value)


@dataclass(frozen=True)
class TrialTarget:
    """One trial to read: its name, and for direct scraping its address and port.

    For reading its log: the pod's uid and trial container (operator) or the log file's
    path (`kubetune run`), and whether it has ended (its log is complete). `pod` names the
    pod when it is not the trial's name (a trial Job's pod).
    """

    name: str
    address: str | None = None
    port: int | None = None
    uid: str | None = None
    pod: str | None = None
    container: str | None = None
    log_path: str | None = None
    ended: bool = False


class MetricsSource(Protocol):
    """Latest metrics for the trials of one sweep.

    Trials with no series yet are missing from the answer; a source that cannot be
    read at all raises MetricsUnavailable.
    """

    async def collect(
        self, namespace: str, sweep: str, trials: list[TrialTarget]
    ) -> dict[str, TrialReading]: ...

    async def aclose(self) -> None: ...
