"""The history kept in status stays small and keeps what pruning needs."""

import itertools
import json

import pytest

from kubetune.engine import SweepEngine
from kubetune.engine.summary import keep_point
from tests.engine.helpers import loss, make_spec, through_json

LORA_TRAINER = {"maxSteps": 10000, "evalEvery": 50, "method": "lora"}


@pytest.mark.parametrize("pruner", ["asha", "median"])
def test_thousand_trials_fit_in_256_kib(pruner: str) -> None:
    spec = make_spec(
        parameters=[],  # the default LoRA search space
        trainer=LORA_TRAINER,
        earlyStopping={"name": pruner, "minSteps": 50},
        budget={"maxTrials": 1000, "parallelism": 50, "maxFailedTrials": 1000},
        algorithm={"name": "random", "seed": 1},
    )
    engine = SweepEngine(spec, "a-long-sweep-name-like-people-write")
    while engine.finished() is None:
        for plan in engine.start_trials():
            for step in range(50, 10001, 50):  # 200 reports each, no pruning here
                engine.report(plan.number, step, loss(plan.params, step) + 0.123456789)
            if plan.number % 10 == 9:
                engine.fail(plan.number, "x" * 500)
            else:
                engine.complete(plan.number, [loss(plan.params, 10000) + 1e-7], 10000)
    history = [
        r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in engine.history()
    ]
    size = len(json.dumps(history, separators=(",", ":")).encode())
    assert size < 256 * 1024, size
    assert max(len(r["iv"]) for r in history) <= 20
    assert through_json(engine.history()) == engine.history()


def test_keep_point_spreads_points_and_keeps_rungs() -> None:
    kept: list[tuple[int, float]] = []
    rungs = [50, 150, 450]
    for step in range(10, 1001, 10):
        if keep_point(kept, step, gap=125, rungs=rungs):
            kept.append((step, 0.0))
    steps = [s for s, _ in kept]
    assert steps[0] == 10
    assert {50, 150, 450} <= set(steps)
    assert all(b > a for a, b in itertools.pairwise(steps))
    assert len(steps) <= 12


def test_keep_point_ignores_steps_that_go_back() -> None:
    assert not keep_point([(100, 1.0)], 100, gap=1, rungs=[])
    assert not keep_point([(100, 1.0)], 50, gap=1, rungs=[])


def test_keep_point_is_geometric_past_twice_the_plan() -> None:
    kept = [(i, 0.0) for i in range(1, 17)]
    assert not keep_point(kept, 20, gap=1, rungs=[])
    assert keep_point(kept, 32, gap=1, rungs=[])


def test_reported_values_are_rounded() -> None:
    engine = SweepEngine(make_spec(), "round")
    engine.start_trials()
    engine.report(0, 50, 1.23456789)
    assert engine.trial(0).intermediate == [(50, 1.235)]
    engine.complete(0, [1.23456789], 400)
    assert engine.trial(0).values == [1.23457]
