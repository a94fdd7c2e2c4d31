"""What the operator keeps of each trial's readings across passes, and what an ending takes."""

from kubetune.metrics import TrialReading
from kubetune.operator.effects import MetricsReading
from kubetune.operator.readings import TrialReadings

OBJ = ["eval_loss"]


def test_an_ending_takes_the_last_reading_and_its_extremes_without_changing_the_kept() -> None:
    readings = TrialReadings()
    running = TrialReading({"eval_loss": 0.9, "eval_step": 10.0})
    readings.take(MetricsReading(values={"s-t0000": running}), ["s-t0000"])
    assert readings.fold("s-t0000", 1, running, OBJ, False) == (10, 0.9)
    final = TrialReading({"eval_loss": 0.4, "eval_step": 20.0, "done": 1.0})
    read = readings.at_end("s-t0000", 1, MetricsReading(values={"s-t0000": final}), OBJ)
    assert read.last == final and read.last_is_final and not read.blind
    assert read.seen == {"eval_loss": [(20, 0.4), (10, 0.9)]}
    assert readings.extremes[("s-t0000", 1)] == {"eval_loss": [(10, 0.9)]}
    # Nothing read this pass: the last reading kept from an earlier pass.
    assert readings.at_end("s-t0000", 1, MetricsReading(), OBJ).last == running


def test_while_the_source_is_down_no_reading_is_final_and_the_trial_ran_blind() -> None:
    readings = TrialReadings()
    earlier = TrialReading({"eval_loss": 0.9, "eval_step": 10.0})
    readings.take(MetricsReading(values={"s-t0000": earlier}), ["s-t0000"])
    down = MetricsReading(problem="connection refused")
    readings.take(down, ["s-t0000"])
    assert readings.at_end("s-t0000", 1, down, OBJ).last is None
    back = readings.at_end("s-t0000", 1, MetricsReading(), OBJ)
    # Read before the outage and not marked done: maybe not the trial's final value.
    assert back.blind and back.last == earlier and not back.last_is_final
    readings.forget("s-t0000")
    assert readings.at_end("s-t0000", 1, MetricsReading(), OBJ).last is None
    assert not readings.blind and not readings.extremes and not readings.last_values
