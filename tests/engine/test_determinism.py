"""An engine rebuilt from history makes the decisions the live engine makes."""

import random

import pytest

from kubetune.engine import SweepEngine, samplers
from tests.engine.helpers import GRID_SPACE, loss, make_spec, rebuilt, simulate


@pytest.mark.parametrize("algorithm", ["auto", "tpe", "random", "grid", "qmc"])
@pytest.mark.parametrize("pruner", ["none", "asha"])
def test_rebuild_at_every_event_decides_like_the_live_engine(algorithm: str, pruner: str) -> None:
    params = GRID_SPACE if algorithm == "grid" else None
    fields: dict[str, object] = {
        "algorithm": {"name": algorithm, "seed": 3, "startupTrials": 4},
        "earlyStopping": {"name": pruner, "minSteps": 50},
        "budget": {"maxTrials": 16, "parallelism": 3, "maxFailedTrials": 10},
    }
    if params is not None:
        fields["parameters"] = params
    engine = SweepEngine(make_spec(**fields), "det")
    log = simulate(engine, random.Random(1), events=120, check=True)
    assert any(line.startswith("start") for line in log)
    assert any(line.startswith("requeue") for line in log)
    if pruner == "asha":
        assert any(line.startswith("prune") for line in log)
    assert engine.finished() is not None


def test_auto_rebuild_decides_like_the_live_engine_across_the_gp_to_tpe_switch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The switch at trial AUTO_GP_TRIALS (300) brought down to 9, so that a short sweep at
    # parallelism 3 crosses it with GP trials still running when TPE takes over.
    monkeypatch.setattr(samplers, "AUTO_GP_TRIALS", 9)
    spec = make_spec(
        algorithm={"name": "auto", "seed": 6, "startupTrials": 4},
        budget={"maxTrials": 14, "parallelism": 3, "maxFailedTrials": 10},
    )
    engine = SweepEngine(spec, "det-auto")
    log = simulate(engine, random.Random(4), events=120, check=True)
    assert any(line.startswith("requeue") for line in log)
    assert engine.finished() is not None
    assert len(engine.history()) == 14


def test_the_default_with_four_at_once_prunes_and_rebuilds_like_the_live_engine() -> None:
    # algorithm auto and earlyStopping auto, both left out: from 4 trials at once the
    # default prunes (ASHA with forecasts, spec/auto_pruning.py), and a rebuild at every
    # event must decide alike, pruning included.
    spec = make_spec(
        algorithm={"seed": 2, "startupTrials": 4},
        budget={"maxTrials": 16, "parallelism": 4, "maxFailedTrials": 10},
    )
    assert (spec.algorithm.name, spec.early_stopping.name) == ("auto", "auto")
    engine = SweepEngine(spec, "det-default")
    assert engine.spec.early_stopping.name == "asha"
    log = simulate(engine, random.Random(5), events=150, check=True)
    assert any(line.startswith("prune") for line in log)
    assert engine.finished() is not None


def test_the_default_one_or_two_at_once_prunes_startup_trials_alone_and_rebuilds_alike() -> None:
    # Below 4 at once the default prunes only the startup trials (earlyStopping.trials:
    # startup); the GP's own trials run to the end, live and after a rebuild at every event.
    spec = make_spec(
        algorithm={"seed": 4, "startupTrials": 8},
        budget={"maxTrials": 16, "parallelism": 2, "maxFailedTrials": 10},
    )
    engine = SweepEngine(spec, "det-screened")
    assert (engine.spec.early_stopping.name, engine.spec.early_stopping.trials) == (
        "asha",
        "startup",
    )
    log = simulate(engine, random.Random(5), events=150, check=True)
    pruned = [int(line.split()[1]) for line in log if line.startswith("prune")]
    assert pruned and max(pruned) < 8, pruned
    assert engine.finished() is not None


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_rebuild_decides_like_the_live_engine_with_other_pruners(pruner: str) -> None:
    spec = make_spec(
        algorithm={"name": "tpe", "seed": 5, "startupTrials": 4},
        earlyStopping={"name": pruner, "minSteps": 50, "startupTrials": 2, "reductionFactor": 2},
        budget={"maxTrials": 16, "parallelism": 3, "maxFailedTrials": 10},
    )
    engine = SweepEngine(spec, "det-pruners")
    log = simulate(engine, random.Random(8), events=150, check=True)
    assert any(line.startswith("prune") for line in log)


@pytest.mark.parametrize("algorithm", ["auto", "tpe", "random", "qmc", "grid", "cmaes", "nsga2"])
def test_two_live_runs_with_one_seed_are_identical(algorithm: str) -> None:
    fields: dict[str, object] = {
        "algorithm": {"name": algorithm, "seed": 11, "startupTrials": 3},
        "budget": {"maxTrials": 12, "parallelism": 2, "maxFailedTrials": 10},
    }
    if algorithm == "grid":
        fields["parameters"] = GRID_SPACE
    logs = [
        simulate(SweepEngine(make_spec(**fields), "twin"), random.Random(5), 80) for _ in range(2)
    ]
    assert logs[0] == logs[1]


def test_other_seed_suggests_other_params() -> None:
    first = SweepEngine(make_spec(algorithm={"name": "tpe", "seed": 1}), "s").start_trials()
    second = SweepEngine(make_spec(algorithm={"name": "tpe", "seed": 2}), "s").start_trials()
    assert [p.params for p in first] != [p.params for p in second]


def test_sweep_name_seeds_a_sweep_without_seed() -> None:
    spec = make_spec(algorithm={"name": "random"})
    same = [SweepEngine(spec, "a").start_trials()[0].params for _ in range(2)]
    other = SweepEngine(spec, "b").start_trials()[0].params
    assert same[0] == same[1]
    assert other != same[0]


def test_gp_rebuild_suggests_the_same_next_trial() -> None:
    spec = make_spec(
        algorithm={"name": "gp", "seed": 2, "startupTrials": 3},
        budget={"maxTrials": 8, "parallelism": 2},
    )
    engine = SweepEngine(spec, "gp")
    for _ in range(3):
        for plan in engine.start_trials():
            engine.complete(plan.number, [loss(plan.params, 400)], 400)
    engine.start_trials()  # two running: the GP sees them as pending points
    twin = rebuilt(engine)
    live = engine.start_trials()
    assert live == []  # parallelism 2 is full
    engine.complete(engine.running()[0], [1.5], 400)
    twin.complete(twin.running()[0], [1.5], 400)
    assert engine.start_trials() == twin.start_trials()


def test_running_trials_in_history_are_not_issued_again() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 10, "parallelism": 3}), "r")
    first = engine.start_trials()
    engine.mark_running(first[0].number)
    twin = rebuilt(engine)
    assert twin.running() == [0, 1, 2]
    assert twin.start_trials() == []
    twin.complete(1, [2.0], 400)
    again = twin.start_trials()
    assert [p.number for p in again] == [3]


def test_requeued_trial_comes_back_first_with_its_number_and_params() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 10, "parallelism": 2}), "q")
    plans = engine.start_trials()
    engine.complete(plans[0].number, [1.7], 400)
    assert engine.requeue(plans[1].number, "node lost")
    twin = rebuilt(engine)
    assert twin.counts().pending == 1
    for eng in (engine, twin):
        again = eng.start_trials()
        assert again[0].number == plans[1].number
        assert again[0].params == plans[1].params
        assert again[0].attempt == 2
        assert [p.number for p in again] == [1, 2]
    assert engine.history() == twin.history()
    assert engine.trial(1).reason == "node lost"
    assert engine.trial(1).requeues == 1


def test_pruning_after_rebuild_matches_live_decisions() -> None:
    spec = make_spec(
        earlyStopping={"name": "asha", "minSteps": 50, "reductionFactor": 2},
        budget={"maxTrials": 12, "parallelism": 4},
    )
    engine = SweepEngine(spec, "p")
    engine.start_trials()
    values = {0: [3.0, 2.5, 2.0], 1: [2.0, 1.5, 1.2], 2: [4.0, 3.9, 3.8], 3: [2.5, 2.2]}
    for number, curve in values.items():
        for i, value in enumerate(curve):
            engine.report(number, 50 * (i + 1), value)
    live = engine.to_prune()
    assert live  # the made-up curves leave someone behind
    assert rebuilt(engine).to_prune() == live


@pytest.mark.parametrize("algorithm", ["cmaes", "nsga2"])
def test_stateful_samplers_resume_without_repeating_or_losing_trials(algorithm: str) -> None:
    # CMA-ES and NSGA-II keep generation state in Optuna trial attributes that the history
    # does not carry: a rebuild continues from the recorded trials, with fresh state.
    spec = make_spec(
        algorithm={"name": algorithm, "seed": 4, "startupTrials": 2},
        budget={"maxTrials": 14, "parallelism": 2},
    )
    engine = SweepEngine(spec, "state")
    simulate(engine, random.Random(2), 20)
    before = engine.history()
    twin = rebuilt(engine)
    assert twin.history() == before
    plans = twin.start_trials()
    known = {r.number for r in before}
    assert all(p.number not in known for p in plans)
    assert [p.number for p in plans] == list(range(len(before), len(before) + len(plans)))
