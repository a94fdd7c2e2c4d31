"""What the status shows about trials: counts, best trial, Pareto front, and bounded history.

Pure functions over the engine's trial records.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kubetune.conventions import trial_name
from kubetune.engine.space import ParamValue, round_significant
from kubetune.spec import BestTrial, Objective, TrialCounts, TrialRecord, TrialState

# Significant digits of objective values: final values keep more than intermediate ones,
# which only steer pruning.
VALUE_DIGITS = 6
INTERMEDIATE_DIGITS = 4
# About this many intermediate points per trial, spread over the training run: 1000 trials
# with the default search space then stay well under 256 KiB of history.
INTERMEDIATE_POINTS = 6
MAX_REASON = 80
MAX_PARETO = 50

IN_FLIGHT: frozenset[TrialState] = frozenset({"Pending", "Queued", "Running"})
FINISHED: frozenset[TrialState] = frozenset({"Succeeded", "Pruned", "Failed"})


@dataclass
class Trial:
    """The engine's mutable record of one trial; ``record()`` is its compact status form."""

    number: int
    state: TrialState
    params: dict[str, ParamValue]
    values: list[float] | None = None
    step: int | None = None
    intermediate: list[tuple[int, float]] = field(default_factory=list)
    # Multi-objective sweeps: the other objectives' values at each intermediate entry.
    others: list[tuple[float, ...]] = field(default_factory=list)
    reason: str | None = None
    requeues: int = 0
    disruptions: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    # GPU-seconds of its ended attempts, to 1 s (engine.gpu_budget).
    gpu_seconds: int = 0
    # Where a succeeded trial's trained artifacts are (kubetune.artifacts, checked).
    artifacts: str | None = None

    @classmethod
    def from_record(cls, record: TrialRecord) -> "Trial":
        return cls(
            number=record.number,
            state=record.state,
            params=dict(record.params),
            values=list(record.values) if record.values is not None else None,
            step=record.step,
            intermediate=[(int(s), float(v)) for s, v in record.intermediate or []],
            others=[tuple(float(v) for v in entry) for entry in record.others or []],
            reason=record.reason,
            requeues=record.requeues or 0,
            disruptions=record.disruptions or 0,
            metrics=dict(record.metrics or {}),
            gpu_seconds=record.gpu_seconds or 0,
            artifacts=record.artifacts,
        )

    def record(self) -> TrialRecord:
        return TrialRecord(
            number=self.number,
            state=self.state,
            params=dict(self.params),
            values=list(self.values) if self.values is not None else None,
            step=self.step,
            intermediate=list(self.intermediate) or None,
            others=[list(entry) for entry in self.others] or None,
            reason=self.reason,
            requeues=self.requeues or None,
            disruptions=self.disruptions or None,
            metrics=dict(self.metrics) or None,
            gpu_seconds=self.gpu_seconds or None,
            artifacts=self.artifacts,
        )


def short_reason(reason: str) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def intermediate_gap(max_steps: int | None, min_steps: int, rungs: bool) -> int:
    """Least steps between two recorded intermediate values of a trial.

    With pruning rungs, the first value past each rung is kept anyway (keep_point), so
    fewer evenly spaced points are needed on top.
    """
    points = INTERMEDIATE_POINTS // 2 if rungs else INTERMEDIATE_POINTS
    horizon = max_steps if max_steps is not None else min_steps * INTERMEDIATE_POINTS
    return max(1, horizon // points)


def keep_point(
    kept: Sequence[tuple[int, float]], step: int, gap: int, rungs: Sequence[int]
) -> bool:
    """Whether an intermediate value at ``step`` goes into the (bounded) history.

    A function of the steps already kept, so every trial reporting at the same steps keeps
    the same ones (the median pruner compares trials step by step), and the first value past
    each pruning rung is always kept (ASHA judges trials there). Past 2x the planned points
    only doublings of the step are kept, which bounds a trial that runs far longer than
    planned.
    """
    if not kept:
        return True
    last = kept[-1][0]
    if step <= last:
        return False
    if any(last < rung <= step for rung in rungs):
        return True
    if len(kept) >= 2 * INTERMEDIATE_POINTS:
        return step >= 2 * last
    return step - last >= gap


def counts(trials: Iterable[Trial]) -> TrialCounts:
    tally = TrialCounts()
    for trial in trials:
        tally.total += 1
        if trial.state in ("Pending", "Requeued"):
            tally.pending += 1
        elif trial.state == "Queued":
            tally.queued += 1
        elif trial.state == "Running":
            tally.running += 1
        elif trial.state == "Succeeded":
            tally.succeeded += 1
        elif trial.state == "Pruned":
            tally.pruned += 1
        elif trial.state == "Failed":
            tally.failed += 1
    return tally


def best_trial(sweep: str, trial: Trial) -> BestTrial:
    values = trial.values or []
    return BestTrial(
        trial=trial_name(sweep, trial.number),
        number=trial.number,
        value=values[0] if len(values) == 1 else None,
        values=list(values) if len(values) > 1 else None,
        step=trial.step,
        parameters=dict(trial.params),
        metrics=dict(trial.metrics) or None,
        artifacts=trial.artifacts,
    )


def _better(a: float, b: float, objective: Objective) -> bool:
    return a < b if objective.direction == "minimize" else a > b


def best(trials: Iterable[Trial], objectives: Sequence[Objective]) -> Trial | None:
    """The succeeded trial best on the first objective; the lowest number wins ties."""
    winner: Trial | None = None
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state != "Succeeded" or not trial.values:
            continue
        if winner is None or _better(trial.values[0], winner.values[0], objectives[0]):  # type: ignore[index]
            winner = trial
    return winner


def _dominates(a: Sequence[float], b: Sequence[float], objectives: Sequence[Objective]) -> bool:
    no_worse = all(not _better(y, x, o) for x, y, o in zip(a, b, objectives, strict=True))
    better = any(_better(x, y, o) for x, y, o in zip(a, b, objectives, strict=True))
    return no_worse and better


def pareto(trials: Iterable[Trial], objectives: Sequence[Objective]) -> list[Trial]:
    """Succeeded trials no other succeeded trial dominates, by first objective, at most MAX_PARETO."""
    done = [t for t in trials if t.state == "Succeeded" and t.values]
    front = [
        t
        for t in done
        if not any(_dominates(o.values, t.values, objectives) for o in done if o is not t)  # type: ignore[arg-type]
    ]
    sign = 1.0 if objectives[0].direction == "minimize" else -1.0
    front.sort(key=lambda t: (sign * t.values[0], t.number))  # type: ignore[index]
    return front[:MAX_PARETO]


def round_value(value: float) -> float:
    return round_significant(value, VALUE_DIGITS)


def round_intermediate(value: float) -> float:
    return round_significant(value, INTERMEDIATE_DIGITS)
