"""budget.maxGpuHours and the gpu_hours objective in the engine."""

from typing import Any

import pytest

from kubetune.engine import SweepEngine
from kubetune.spec import SweepSpec
from kubetune.trial_ending import TrialEnding, judge
from kubetune.trial_result import TrialResult


def spec(max_gpu_hours: float | None = 1.0, parallelism: int = 1, **extra: Any) -> SweepSpec:
    budget: dict[str, Any] = {"maxTrials": 20, "parallelism": parallelism}
    if max_gpu_hours is not None:
        budget["maxGpuHours"] = max_gpu_hours
    return SweepSpec.model_validate(
        {
            "algorithm": {"name": "random", "seed": 3},
            "budget": budget,
            "parameters": [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}],
            "template": {"spec": {"containers": [{"name": "t", "command": ["t"]}]}},
            **extra,
        }
    )


def finish(engine: SweepEngine, number: int, gpu_seconds: float) -> None:
    engine.mark_running(number)
    assert engine.complete(number, [0.5], 10, gpu_seconds=gpu_seconds)


def test_no_trial_starts_that_would_cross_the_budget_at_the_mean_cost() -> None:
    engine = SweepEngine(spec(1.0), "g")  # 3600 GPU-seconds
    started = []
    while plans := engine.start_trials():
        (plan,) = plans
        started.append(plan.number)
        finish(engine, plan.number, 1000)
    # 1000, 2000, 3000 spent: a fourth at the mean (1000) would reach 4000 > 3600.
    assert started == [0, 1, 2]
    completion = engine.finished()
    assert completion is not None and completion.reason == "GpuBudgetSpent"
    assert completion.succeeded
    assert engine.gpu_hours() == round(3000 / 3600, 4)


def test_before_any_trial_finished_starting_is_allowed_and_in_flight_trials_finish() -> None:
    engine = SweepEngine(spec(1.0, parallelism=2), "g")
    assert [p.number for p in engine.start_trials()] == [0, 1]
    finish(engine, 0, 3000)
    # Spent 3000, mean 3000: trial 1 in flight and one more would cross it.
    assert engine.start_trials() == []
    assert engine.finished() is None, "trial 1 is still running: it may finish"
    finish(engine, 1, 1000)
    assert engine.trial(1).state == "Succeeded"
    completion = engine.finished()
    assert completion is not None and completion.reason == "GpuBudgetSpent"
    assert "1.1111 GPU-hours spent" in completion.message


def test_each_attempt_is_counted_once_and_a_rebuild_keeps_the_gpu_seconds() -> None:
    engine = SweepEngine(spec(2.0), "g")
    (plan,) = engine.start_trials()
    engine.mark_running(plan.number)
    assert engine.requeue(plan.number, "Evicted", disruption=True, gpu_seconds=500.4)
    assert not engine.requeue(plan.number, "Evicted", gpu_seconds=500), "not in flight"
    (again,) = engine.start_trials()
    assert again.attempt == 2
    finish(engine, plan.number, 700)
    assert not engine.fail(plan.number, "late", gpu_seconds=999), "already finished"
    assert engine.trial(plan.number).gpu_seconds == 1200
    assert engine.history()[0].model_dump(by_alias=True)["gs"] == 1200

    rebuilt = SweepEngine(spec(2.0), "g", engine.history())
    assert rebuilt.gpu_hours() == engine.gpu_hours()
    assert rebuilt.history() == engine.history()
    assert [p.params for p in rebuilt.start_trials()] == [p.params for p in engine.start_trials()]


def test_without_a_gpu_budget_gpu_seconds_are_recorded_but_stop_nothing() -> None:
    engine = SweepEngine(spec(None), "g")
    for _ in range(20):
        (plan,) = engine.start_trials()
        finish(engine, plan.number, 10_000)
    completion = engine.finished()
    assert completion is not None and completion.reason == "MaxTrialsReached"
    assert engine.gpu_hours() == round(200_000 / 3600, 4)


def test_gpu_hours_objective_gives_a_pareto_front_of_quality_against_cost() -> None:
    objectives = [
        {"metric": "eval_loss", "direction": "minimize"},
        {"metric": "gpu_hours", "direction": "minimize"},
    ]
    sweep = spec(None, objectives=objectives)
    engine = SweepEngine(sweep, "g")
    # (loss, GPU-seconds): the longer runs are better; trial 3 is dominated by trial 1.
    costs = [(0.9, 600), (0.5, 3600), (0.3, 7200), (0.6, 3600)]
    for loss, seconds in costs:
        (plan,) = engine.start_trials()
        engine.mark_running(plan.number)
        # The trial claims to be free: its own gpu_hours report is ignored.
        result = TrialResult(status="succeeded", metrics={"eval_loss": loss, "gpu_hours": 0.0})
        ending = TrialEnding(0, result=result, gpu_seconds=seconds)
        assert engine.conclude(plan.number, judge(ending, sweep.objective_list))
    front = {t.number: t.values for t in engine.pareto_front()}
    assert front == {2: [0.3, 2.0], 1: [0.5, 1.0], 0: [0.9, round(600 / 3600, 6)]}


@pytest.mark.parametrize(
    ("earlier", "attempt", "hours"), [(0, 1800, 0.5), (1800, 1800.4, 1.0), (0, float("nan"), 0.0)]
)
def test_gpu_hours_value_adds_the_earlier_attempts(
    earlier: float, attempt: float, hours: float
) -> None:
    result = TrialResult(status="succeeded", metrics={"eval_loss": 0.1})
    ending = TrialEnding(0, result=result, gpu_seconds=attempt, earlier_gpu_seconds=earlier)
    verdict = judge(ending, ["eval_loss", "gpu_hours"])
    assert verdict.kind == "complete" and verdict.values == [0.1, hours]
