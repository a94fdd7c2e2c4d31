"""When a sweep is over, and why."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kubetune.engine import gpu_budget
from kubetune.engine.summary import IN_FLIGHT, Trial
from kubetune.spec import Objective, SweepSpec

CompletionReason = Literal[
    "MaxTrialsReached", "TargetReached", "GridExhausted", "TooManyFailures", "GpuBudgetSpent"
]


@dataclass(frozen=True)
class Completion:
    reason: CompletionReason
    succeeded: bool
    message: str


def _reaches_targets(values: Sequence[float], objectives: Sequence[Objective]) -> bool:
    with_target = [(v, o) for v, o in zip(values, objectives, strict=False) if o.target is not None]
    return bool(with_target) and all(o.reached(v) for v, o in with_target)


def check(spec: SweepSpec, trials: Sequence[Trial], grid_points: int | None) -> Completion | None:
    """The sweep's completion, or None while it goes on.

    Failures and a reached target end it at once (running trials are then stopped); the
    trial budget, an exhausted grid and the GPU-hour budget end it when no trial is left
    running or waiting (the GPU budget: once no further trial fits, engine.gpu_budget).
    """
    objectives = spec.objective_list
    failed = sum(1 for t in trials if t.state == "Failed")
    limit = spec.budget.max_failed_trials
    if failed > limit:
        return Completion(
            "TooManyFailures",
            False,
            f"{failed} trials failed, more than budget.maxFailedTrials={limit}",
        )
    for trial in sorted(trials, key=lambda t: t.number):
        if (
            trial.state == "Succeeded"
            and trial.values
            and _reaches_targets(trial.values, objectives)
        ):
            return Completion(
                "TargetReached",
                True,
                f"trial {trial.number} reached the objective target with {trial.values}",
            )
    if any(t.state in IN_FLIGHT for t in trials):
        return None
    # Out of trials with none succeeded is still a failed sweep: there is no result to use.
    any_succeeded = any(t.state == "Succeeded" for t in trials)
    note = "" if any_succeeded else "; no trial succeeded"
    max_gpu_hours = spec.budget.max_gpu_hours
    if not gpu_budget.may_start(max_gpu_hours, trials):
        spent = gpu_budget.hours(gpu_budget.spent_seconds(trials))
        mean = gpu_budget.hours(gpu_budget.mean_seconds(trials) or 0.0)
        return Completion(
            "GpuBudgetSpent",
            any_succeeded,
            f"{spent} GPU-hours spent (budget.maxGpuHours={max_gpu_hours}), a trial takes "
            f"{mean} on average{note}",
        )
    if any(t.state == "Requeued" for t in trials):
        return None
    if grid_points is not None and len(trials) >= grid_points:
        return Completion(
            "GridExhausted", any_succeeded, f"all {grid_points} grid points were tried{note}"
        )
    if len(trials) >= spec.budget.max_trials:
        return Completion(
            "MaxTrialsReached",
            any_succeeded,
            f"{len(trials)} trials ran (budget.maxTrials={spec.budget.max_trials}){note}",
        )
    return None
