"""Multi-objective pruning (MO-ASHA): non-dominated sorting at each rung, from the records."""

import pytest

from kubetune.engine import SweepEngine
from kubetune.engine.mo_asha import crowding, mo_asha_prunes, mo_survivors, nondominated_ranks
from kubetune.engine.pruners import AshaPruner
from kubetune.engine.replay import HistoryError
from kubetune.metrics.types import TrialReading
from kubetune.spec import SweepSpec, TrialRecord
from tests.engine.helpers import make_spec, rebuilt, through_json

OBJECTIVES = [
    {"metric": "eval_loss", "direction": "minimize"},
    {"metric": "eval_accuracy", "direction": "maximize"},
]


def mo_spec(**fields: object) -> SweepSpec:
    return make_spec(
        objectives=OBJECTIVES,
        earlyStopping={"name": "asha", "minSteps": 50, "reductionFactor": 2},
        **fields,
    )


def test_nondominated_ranks_and_crowding() -> None:
    points = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (2.5, 2.5), (4.0, 4.0)]
    assert nondominated_ranks(points) == [0, 0, 0, 1, 2]
    assert nondominated_ranks([(1.0, 1.0), (1.0, 1.0)]) == [0, 0]  # equal: neither dominates
    spread = crowding([(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)])
    assert spread[0] == spread[2] == float("inf") and spread[1] == pytest.approx(2.0)


def test_mo_survivors_keep_the_first_fronts_then_the_most_isolated() -> None:
    vectors = {0: (1.0, 9.0), 1: (9.0, 1.0), 2: (5.0, 5.0), 3: (6.0, 6.0), 4: (7.0, 7.0)}
    # ceil(5/3) = 2 places, front 0 has three members: its extremes stay.
    assert mo_survivors(vectors, 3) == {0, 1}
    assert mo_survivors(vectors, 2) == {0, 1, 2}
    # A trial worse on the first objective but cheaper is on the front: loss-only
    # ranking would drop it, non-dominated sorting keeps it.
    assert 1 in mo_survivors({0: (1.0, 5.0), 1: (2.0, 1.0), 2: (1.5, 6.0)}, 2)
    # Equal vectors are ties: both stay, as with one objective.
    assert mo_survivors({0: (1.0, 1.0), 1: (1.0, 1.0), 2: (2.0, 2.0)}, 3) == {0, 1}


def test_mo_asha_judges_at_the_highest_rung_reached() -> None:
    asha = AshaPruner(10, 3, max_steps=1000)
    series = {
        0: [(10, (1.0, 1.0)), (30, (1.0, 1.0))],
        1: [(10, (2.0, 2.0)), (30, (0.5, 0.5))],
        2: [(10, (0.1, 0.1)), (30, (5.0, 5.0))],
    }
    # Trial 2 is best at rung 10 but dominated by both at rung 30.
    assert mo_asha_prunes(asha, 2, series, [1.0, 1.0])
    assert not mo_asha_prunes(asha, 1, series, [1.0, 1.0])
    assert not mo_asha_prunes(asha, 2, {**series, 2: [(5, (9.0, 9.0))]}, [1.0, 1.0])


def test_engine_prunes_dominated_trials_and_decides_the_same_after_a_rebuild() -> None:
    spec = mo_spec(budget={"maxTrials": 9, "parallelism": 3})
    engine = SweepEngine(spec, "mo")
    # reductionFactor 2: ceil(3/2) = 2 of 3 continue. (loss, accuracy): trial 0 low loss, trial 1 high accuracy, trial 2 worse at both.
    shapes = {0: (1.0, 0.5), 1: (2.0, 0.9), 2: (3.0, 0.4)}
    assert [p.number for p in engine.start_trials()] == [0, 1, 2]
    for number, (loss, accuracy) in shapes.items():
        engine.report(number, 50, [loss, accuracy])
    assert engine.to_prune() == [2]
    again = rebuilt(engine)
    assert again.to_prune() == [2]
    assert again.trial(2).others == [[0.4]]


def test_engine_report_checks_the_number_of_values() -> None:
    engine = SweepEngine(mo_spec(), "mo")
    engine.start_trials()
    with pytest.raises(ValueError, match="expected 2 intermediate value"):
        engine.report(0, 50, 1.0)
    single = SweepEngine(make_spec(), "one")
    single.start_trials()
    with pytest.raises(ValueError, match="expected 1 intermediate value"):
        single.report(0, 50, [1.0, 2.0])


def test_pruned_multi_objective_trial_replays_like_the_live_study() -> None:
    engine = SweepEngine(mo_spec(budget={"maxTrials": 6, "parallelism": 3}), "mo")
    engine.start_trials()
    for number, loss in enumerate([1.0, 2.0, 3.0]):
        engine.report(number, 50, [loss, 0.5 - loss / 10])
    for number in engine.to_prune():
        engine.prune(number)
    engine.complete(0, [0.9, 0.6], 400)
    again = rebuilt(engine)
    assert again.history() == engine.history()
    assert again.start_trials() == engine.start_trials()


def test_history_io_must_match_iv() -> None:
    spec = mo_spec()
    bad = TrialRecord(
        number=0, state="Running", params={}, intermediate=[(50, 1.0)], others=[[0.5], [0.6]]
    )
    with pytest.raises(HistoryError, match="io needs one entry of 1 value"):
        SweepEngine(spec, "mo", through_json([bad]))
    stray = TrialRecord(
        number=0, state="Running", params={}, intermediate=[(50, 1.0)], others=[[0.5]]
    )
    with pytest.raises(HistoryError, match="io in a one-objective sweep"):
        SweepEngine(make_spec(), "one", through_json([stray]))


def test_reading_evaluations_need_every_objective() -> None:
    reading = TrialReading({"eval_loss": 1.5, "eval_accuracy": 0.7, "eval_step": 50.0})
    assert reading.evaluations(["eval_loss", "eval_accuracy"]) == (50, [1.5, 0.7])
    assert (
        TrialReading({"eval_loss": 1.5, "eval_step": 50.0}).evaluations(
            ["eval_loss", "eval_accuracy"]
        )
        is None
    )
