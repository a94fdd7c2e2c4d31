"""What one reading of a running trial gives both runtimes: extremes kept, a point reported."""

from kubetune.metrics import TrialReading
from kubetune.trial_readings import fold_reading


def test_a_single_objective_point_is_a_value_and_the_extremes_are_kept() -> None:
    seen: dict[str, list[tuple[int, float]]] = {}
    first = TrialReading({"eval_loss": 0.8, "eval_step": 10.0})
    second = TrialReading({"eval_loss": 0.5, "eval_step": 20.0})
    assert fold_reading(seen, first, ["eval_loss"], False) == (10, 0.8)
    assert fold_reading(seen, second, ["eval_loss"], False) == (20, 0.5)
    assert seen == {"eval_loss": [(20, 0.5), (10, 0.8)]}


def test_a_gauge_at_step_zero_is_no_evaluation_yet() -> None:
    seen: dict[str, list[tuple[int, float]]] = {}
    reading = TrialReading({"eval_loss": 0.0, "step": 0.0})
    assert fold_reading(seen, reading, ["eval_loss"], False) is None
    assert seen == {}


def test_several_objectives_are_one_point_once_each_was_evaluated() -> None:
    seen: dict[str, list[tuple[int, float]]] = {}
    partial = TrialReading({"eval_loss": 0.7, "eval_step": 5.0})
    objectives = ["eval_loss", "eval_accuracy"]
    # The loss is kept for the min/max strategies, but no point is reported without both.
    assert fold_reading(seen, partial, objectives, True) is None
    assert seen == {"eval_loss": [(5, 0.7)]}
    full = TrialReading({"eval_loss": 0.6, "eval_accuracy": 0.9, "eval_step": 10.0})
    assert fold_reading(seen, full, objectives, True) == (10, [0.6, 0.9])
