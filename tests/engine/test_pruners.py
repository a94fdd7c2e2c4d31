"""Pruning decisions: pure functions of the recorded intermediate values."""

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from kubetune.engine import SweepEngine
from kubetune.engine.pruners import (
    AshaPruner,
    HyperbandPruner,
    MedianPruner,
    rung_value,
    survives,
)
from tests.engine.helpers import make_spec, rebuilt


def test_rung_value_is_the_first_value_at_or_after_the_rung() -> None:
    assert rung_value({40: 3.0, 60: 2.0, 90: 1.0}, 50) == 2.0
    assert rung_value({40: 3.0}, 50) is None


def test_survives_keeps_the_best_third() -> None:
    assert survives(1.0, [1.0, 2.0, 3.0], 3, maximize=False)
    assert not survives(2.0, [1.0, 2.0, 3.0], 3, maximize=False)
    assert survives(3.0, [1.0, 2.0, 3.0], 3, maximize=True)
    assert survives(2.0, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 3, maximize=False)  # ceil(7/3)=3
    assert not survives(4.0, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 3, maximize=False)


def _study(curves: dict[int, dict[int, float]], running: int) -> optuna.Study:
    study = optuna.create_study()
    for number in sorted(curves):
        state = TrialState.RUNNING if number == running else TrialState.COMPLETE
        value = None if state == TrialState.RUNNING else 1.0
        study.add_trial(create_trial(state=state, value=value, intermediate_values=curves[number]))
    return study


def test_asha_judges_a_trial_at_its_highest_rung() -> None:
    curves = {
        0: {10: 5.0, 30: 4.0},
        1: {10: 6.0, 30: 3.0},
        2: {10: 7.0, 30: 2.0},
        3: {10: 1.0, 30: 9.0},
    }
    pruner = AshaPruner(min_steps=10, reduction_factor=3)
    study = _study(curves, running=3)
    # Trial 3 is best at rung 0 (step 10) but worst at rung 1 (step 30): rung 1 decides.
    assert pruner.prune(study, study.trials[3])
    study = _study({**curves, 3: {10: 1.0}}, running=3)
    assert not pruner.prune(study, study.trials[3])


def test_asha_stops_judging_after_its_last_rung() -> None:
    # min 10, eta 3, max 100: rungs at 10 and 30; a trial past 30 runs to the end.
    curves = {0: {90: 1.0}, 1: {90: 2.0}, 2: {90: 3.0}, 3: {10: 1.0, 30: 1.0, 90: 9.0}}
    study = _study(curves, running=3)
    assert not AshaPruner(10, 3, max_steps=100).prune(study, study.trials[3])
    assert AshaPruner(10, 3).prune(study, study.trials[3])  # no cap: judged at rung 90


def test_asha_judges_up_to_half_the_run() -> None:
    # min 5, eta 4, max 40 (the fine-tuning table): rungs at 5 and 20, though 80 > 40.
    pruner = AshaPruner(5, 4, max_steps=40)
    assert pruner.top_resource == 20
    assert [pruner.resource(step) for step in (4, 5, 19, 20, 35)] == [None, 5, 5, 20, 20]
    # Past half the run there is no further rung: eta 4 from 5 in 30 steps keeps only 5.
    assert AshaPruner(5, 4, max_steps=30).top_resource == 5
    # Trial 4 is best at step 5 but worst of five at step 20: the rung at 20 stops it.
    curves = {n: {5: 3.0 + n, 20: 1.0 + n, 40: 0.5 + n} for n in range(4)}
    study = _study({**curves, 4: {5: 1.0, 20: 9.0}}, running=4)
    assert pruner.prune(study, study.trials[4])
    assert not AshaPruner(5, 4, max_steps=30).prune(study, study.trials[4])


def test_asha_does_not_prune_before_min_steps() -> None:
    study = _study({0: {5: 1.0}, 1: {5: 9.0}}, running=1)
    assert not AshaPruner(min_steps=10, reduction_factor=3).prune(study, study.trials[1])


def test_hyperband_brackets_are_stable_and_all_used() -> None:
    pruner = HyperbandPruner("hb", min_steps=10, max_steps=270, reduction_factor=3)
    assert pruner.bracketing.count == 4
    brackets = [pruner.bracketing(n) for n in range(400)]
    assert set(brackets) == {0, 1, 2, 3}
    assert brackets.count(0) > brackets.count(3)  # early-stopping bracket gets most trials
    again = HyperbandPruner("hb", min_steps=10, max_steps=270, reduction_factor=3)
    assert [again.bracketing(n) for n in range(400)] == brackets


@pytest.mark.parametrize("name", ["median", "asha", "hyperband"])
def test_each_pruner_stops_a_clearly_worse_trial(name: str) -> None:
    spec = make_spec(
        earlyStopping={"name": name, "minSteps": 50, "startupTrials": 2, "reductionFactor": 2},
        budget={"maxTrials": 40, "parallelism": 1},
    )
    engine = SweepEngine(spec, "prn")
    pruned = 0
    for number in range(30):
        (plan,) = engine.start_trials()
        bad = number % 2 == 1
        for step in range(50, 401, 50):
            engine.report(plan.number, step, (5.0 if bad else 1.0) + 1.0 / step + number * 1e-4)
            if plan.number in engine.to_prune():
                engine.prune(plan.number)
                pruned += 1
                break
        else:
            engine.complete(plan.number, [(5.0 if bad else 1.0)], 400)
    assert pruned >= 10
    assert engine.best().value == pytest.approx(1.0)  # type: ignore[union-attr]
    assert rebuilt(engine).to_prune() == engine.to_prune()


def test_no_pruner_never_prunes() -> None:
    engine = SweepEngine(make_spec(budget={"maxTrials": 4, "parallelism": 2}), "none")
    engine.start_trials()
    engine.complete(0, [1.0], 400)
    for step in range(50, 401, 50):
        engine.report(1, step, 100.0)
    assert engine.to_prune() == []


def test_rung_at_max_steps_prunes_nothing_and_first_rung_always_counts() -> None:
    curves = {0: {100: 1.0}, 1: {100: 2.0}, 2: {100: 9.0}}
    study = _study(curves, running=2)
    # Hyperband's last bracket starts at max_steps: no early stopping there.
    assert not AshaPruner(100, 3, max_steps=100).prune(study, study.trials[2])
    # minSteps 100 of 200 leaves less than eta x room, but the user asked for that rung.
    assert AshaPruner(100, 3, max_steps=200).prune(study, study.trials[2])


def test_median_compares_with_the_last_value_before_the_step() -> None:
    # Finished trials were read at steps 2, 5, 8; the running one at step 6.
    curves = {0: {2: 3.0, 5: 2.0, 8: 1.0}, 1: {2: 3.5, 5: 2.5, 8: 1.5}, 2: {3: 5.0, 6: 4.0}}
    study = _study(curves, running=2)
    assert MedianPruner(startup_trials=2, min_steps=2).prune(study, study.trials[2])
    assert not MedianPruner(startup_trials=3, min_steps=2).prune(study, study.trials[2])
    assert not MedianPruner(startup_trials=2, min_steps=7).prune(study, study.trials[2])
    good = _study({**curves, 2: {3: 2.0, 6: 2.1}}, running=2)
    assert not MedianPruner(startup_trials=2, min_steps=2).prune(good, good.trials[2])
