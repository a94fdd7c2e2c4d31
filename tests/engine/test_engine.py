"""SweepEngine's decisions: budget, parallelism, suspend, completion, what the status shows."""

import subprocess
import sys

import pytest

from kubetune.engine import HistoryError, SweepEngine
from kubetune.spec import TrialRecord
from tests.engine.helpers import GRID_SPACE, make_spec, rebuilt


def run_all(engine: SweepEngine, value: float = 2.0) -> None:
    while engine.finished() is None:
        plans = engine.start_trials()
        assert plans, "an unfinished sweep with nothing running must start something"
        for plan in plans:
            engine.complete(plan.number, [value + plan.number / 100], 400)


def test_engine_import_pulls_in_no_kubernetes_client() -> None:
    code = (
        "import sys, kubetune.engine; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('kopf', 'kubernetes', 'httpx', "
        "'aiohttp', 'requests')]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_start_trials_respects_parallelism_and_names_trials() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 10, "parallelism": 3}), "demo")
    plans = engine.start_trials()
    assert [p.number for p in plans] == [0, 1, 2]
    assert [p.name for p in plans] == ["demo-t0000", "demo-t0001", "demo-t0002"]
    assert engine.start_trials() == []
    assert engine.counts().pending == 3
    engine.mark_running(0)
    assert engine.counts().running == 1
    engine.complete(1, [1.5], 400)
    assert [p.number for p in engine.start_trials()] == [3]


def test_parallel_asks_differ() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 20, "parallelism": 8}), "par")
    for plan in engine.start_trials():
        engine.complete(plan.number, [1.0 + plan.params["warmup"]], 400)  # type: ignore[operator]
    batch = engine.start_trials()  # TPE past its startup trials, 8 at once
    assert len(batch) == 8
    assert len({tuple(sorted(p.params.items())) for p in batch}) == 8


def test_params_are_in_range_and_rounded() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 10, "parallelism": 10}), "rng")
    for plan in engine.start_trials():
        lr = plan.params["learning_rate"]
        assert isinstance(lr, float) and 1e-5 <= lr <= 1e-2
        assert float(f"{lr:.6g}") == lr  # six significant digits at most
        assert plan.params["lora_r"] in (8, 16, 32, 64)
        assert isinstance(plan.params["layers"], int)


def test_max_trials_completes_once_nothing_runs() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 4, "parallelism": 2}), "m")
    first = engine.start_trials()
    for plan in first:
        engine.complete(plan.number, [2.0], 400)
    last = engine.start_trials()
    assert [p.number for p in last] == [2, 3]
    engine.complete(2, [1.0], 400)
    assert engine.finished() is None  # trial 3 still runs
    assert engine.start_trials() == []
    engine.prune(3)
    done = engine.finished()
    assert done is not None and done.reason == "MaxTrialsReached" and done.succeeded
    assert engine.best() is not None and engine.best().number == 2  # type: ignore[union-attr]


def test_target_reached_ends_the_sweep_at_once() -> None:
    spec = make_spec(
        objective={"metric": "eval_loss", "direction": "minimize", "target": 1.1},
        budget={"maxTrials": 10, "parallelism": 2},
    )
    engine = SweepEngine(spec, "t")
    engine.start_trials()
    engine.complete(0, [1.3], 400)
    assert engine.finished() is None
    engine.start_trials()
    engine.complete(1, [1.05], 400)
    done = engine.finished()
    assert done is not None and done.reason == "TargetReached" and done.succeeded
    assert engine.start_trials() == []


def test_target_of_a_maximized_objective() -> None:
    spec = make_spec(
        objective={"metric": "accuracy", "direction": "maximize", "target": 0.9},
        budget={"maxTrials": 5, "parallelism": 1},
    )
    engine = SweepEngine(spec, "acc")
    engine.start_trials()
    engine.complete(0, [0.8], 400)
    assert engine.finished() is None
    engine.start_trials()
    engine.complete(1, [0.95], 400)
    assert engine.finished().reason == "TargetReached"  # type: ignore[union-attr]
    assert engine.best().value == 0.95  # type: ignore[union-attr]


def test_too_many_failures_is_a_failed_sweep() -> None:
    engine = SweepEngine(
        make_spec(budget={"maxTrials": 10, "parallelism": 3, "maxFailedTrials": 1}), "f"
    )
    engine.start_trials()
    engine.fail(0, "CrashLoopBackOff")
    assert engine.finished() is None  # 1 failure is within the budget
    engine.fail(1, "OOMKilled")
    done = engine.finished()
    assert done is not None and done.reason == "TooManyFailures" and not done.succeeded
    assert "maxFailedTrials=1" in done.message
    assert engine.counts().failed == 2
    assert engine.trial(1).reason == "OOMKilled"


def test_max_trials_with_no_success_is_not_a_success() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 2, "parallelism": 2}), "nos")
    engine.start_trials()
    engine.prune(0)
    engine.prune(1)
    done = engine.finished()
    assert done is not None and done.reason == "MaxTrialsReached" and not done.succeeded


def test_grid_tries_every_point_once_then_is_exhausted() -> None:
    spec = make_spec(
        parameters=GRID_SPACE,
        algorithm={"name": "grid", "seed": 1},
        budget={"maxTrials": 100, "parallelism": 4},
    )
    engine = SweepEngine(spec, "grid")
    seen = []
    while engine.finished() is None:
        for plan in engine.start_trials():
            seen.append(tuple(sorted(plan.params.items())))
            engine.complete(plan.number, [1.0], 400)
    assert len(seen) == 3 * 3 * 2 == len(set(seen))
    assert {dict(p)["dropout"] for p in seen} == {0.0, 0.1, 0.2}
    assert engine.finished().reason == "GridExhausted"  # type: ignore[union-attr]


def test_grid_stops_at_max_trials_when_smaller() -> None:
    spec = make_spec(
        parameters=GRID_SPACE, algorithm={"name": "grid"}, budget={"maxTrials": 5, "parallelism": 5}
    )
    engine = SweepEngine(spec, "g5")
    plans = engine.start_trials()
    assert len(plans) == 5
    for plan in plans:
        engine.complete(plan.number, [1.0], 400)
    assert engine.finished().reason == "MaxTrialsReached"  # type: ignore[union-attr]


def test_suspend_starts_nothing_and_resume_goes_on() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 6, "parallelism": 2}), "sus")
    engine.start_trials()
    engine.requeue(0, "suspended")
    engine.requeue(1, "suspended")
    paused = SweepEngine(
        make_spec(budget={"maxTrials": 6, "parallelism": 2}, suspend=True), "sus", engine.history()
    )
    assert paused.start_trials() == []
    assert paused.finished() is None
    resumed = SweepEngine(
        make_spec(budget={"maxTrials": 6, "parallelism": 2}), "sus", paused.history()
    )
    assert [p.number for p in resumed.start_trials()] == [0, 1]


def test_budget_changes_apply_to_an_engine_built_with_the_new_spec() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 10, "parallelism": 2}), "b")
    engine.start_trials()
    wider = SweepEngine(
        make_spec(budget={"maxTrials": 10, "parallelism": 5}), "b", engine.history()
    )
    assert [p.number for p in wider.start_trials()] == [2, 3, 4]
    smaller = SweepEngine(
        make_spec(budget={"maxTrials": 5, "parallelism": 5}), "b", wider.history()
    )
    assert smaller.start_trials() == []  # 5 trials exist already
    for number in smaller.running():
        smaller.complete(number, [1.0], 400)
    assert smaller.finished().reason == "MaxTrialsReached"  # type: ignore[union-attr]


def test_events_after_the_end_of_a_trial_change_nothing() -> None:
    engine = SweepEngine(make_spec(), "idem")
    engine.start_trials()
    assert engine.complete(0, [1.2], 400)
    assert not engine.complete(0, [0.1], 400)
    assert not engine.fail(0, "late")
    assert not engine.prune(0)
    assert not engine.requeue(0, "late")
    assert not engine.report(0, 450, 0.1)
    assert engine.trial(0).values == [1.2]


def test_unknown_trial_and_wrong_value_count_are_errors() -> None:
    engine = SweepEngine(make_spec(), "err")
    engine.start_trials()
    with pytest.raises(ValueError, match="no trial 99"):
        engine.complete(99, [1.0], 10)
    with pytest.raises(ValueError, match="expected 1 objective value"):
        engine.complete(0, [1.0, 2.0], 10)


def test_non_finite_final_value_fails_the_trial() -> None:
    engine = SweepEngine(make_spec(), "nan")
    engine.start_trials()
    engine.complete(0, [float("nan")], 400)
    assert engine.trial(0).state == "Failed"
    assert "not finite" in (engine.trial(0).reason or "")
    assert not engine.report(1, 50, float("inf"))


def test_multi_objective_pareto_front() -> None:
    spec = make_spec(
        objective=None,
        objectives=[
            {"metric": "eval_loss", "direction": "minimize"},
            {"metric": "tokens_per_second", "direction": "maximize"},
        ],
        budget={"maxTrials": 6, "parallelism": 6},
    )
    engine = SweepEngine(spec, "mo")
    engine.start_trials()
    results = {0: [1.0, 100.0], 1: [1.2, 300.0], 2: [1.1, 90.0], 3: [1.5, 250.0], 4: [0.9, 50.0]}
    for number, values in results.items():
        engine.complete(number, values, 400)
    front = engine.pareto_front()
    assert [t.number for t in front] == [4, 0, 1]
    assert front[0].values == [0.9, 50.0] and front[0].value is None
    assert engine.best().number == 4  # type: ignore[union-attr]
    assert rebuilt(engine).pareto_front() == front


def test_counts_cover_every_state() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 10, "parallelism": 6}), "c")
    engine.start_trials()
    engine.mark_running(0)
    engine.complete(1, [1.0], 400)
    engine.prune(2)
    engine.fail(3, "x")
    engine.requeue(4, "evicted")
    counts = engine.counts()
    assert (counts.total, counts.pending, counts.running) == (6, 2, 1)
    assert (counts.succeeded, counts.pruned, counts.failed) == (1, 1, 1)


def test_history_with_a_gap_keeps_numbers_and_never_reuses_one() -> None:
    history = [
        TrialRecord(
            n=0,
            s="Succeeded",
            p={"learning_rate": 1e-3, "warmup": 0.1, "layers": 2, "lora_r": 8},
            v=[1.5],
            st=400,
        ),
        TrialRecord(
            n=2, s="Running", p={"learning_rate": 2e-3, "warmup": 0.1, "layers": 3, "lora_r": 16}
        ),
    ]
    engine = SweepEngine(make_spec(budget={"maxTrials": 10, "parallelism": 2}), "gap", history)
    assert [p.number for p in engine.start_trials()] == [3]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            TrialRecord(
                n=0,
                s="Succeeded",
                p={"learning_rate": 1e-3, "warmup": 0.1, "layers": 2, "lora_r": 8},
            ),
            "no value",
        ),
        (
            TrialRecord(
                n=0, s="Running", p={"learning_rate": 1e-3, "warmup": 0.1, "layers": 2, "lora_r": 7}
            ),
            "lora_r",
        ),
        (
            TrialRecord(
                n=0, s="Running", p={"learning_rate": 5.0, "warmup": 0.1, "layers": 2, "lora_r": 8}
            ),
            "trial 0",
        ),
        (
            TrialRecord(n=0, s="Running", p={"warmup": 0.1, "layers": 2, "lora_r": 8}),
            "learning_rate",
        ),
    ],
)
def test_bad_history_names_the_trial_and_problem(record: TrialRecord, message: str) -> None:
    with pytest.raises(HistoryError, match=message):
        SweepEngine(make_spec(), "bad", [record])


def test_duplicate_history_numbers_are_rejected() -> None:
    record = TrialRecord(
        n=0, s="Failed", p={"learning_rate": 1e-3, "warmup": 0.1, "layers": 2, "lora_r": 8}
    )
    with pytest.raises(HistoryError, match="appears twice"):
        SweepEngine(make_spec(), "dup", [record, record])


def test_full_run_keeps_the_best_and_rebuilds_identically() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 12, "parallelism": 3}), "full")
    run_all(engine)
    assert engine.counts().succeeded == 12
    assert engine.best().number == 0  # type: ignore[union-attr]
    twin = rebuilt(engine)
    assert twin.best() == engine.best()
    assert twin.finished() == engine.finished()
    assert len(engine.study.trials) == 12


def test_gp_without_torch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    with pytest.raises(ValueError, match=r"algorithm\.name: gp needs PyTorch"):
        SweepEngine(make_spec(algorithm={"name": "gp"}), "gp")
    # auto (the default) asks the GP too: without torch it says so instead of running TPE.
    with pytest.raises(ValueError, match=r"algorithm\.name: auto needs PyTorch"):
        SweepEngine(make_spec(algorithm={"name": "auto"}), "auto")
