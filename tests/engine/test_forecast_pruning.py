"""ASHA with forecasts (earlyStopping.forecast): keeps the slow starter that ends best."""

import math

import pytest

from kubetune.engine import SweepEngine
from kubetune.engine.forecast import forecast
from kubetune.engine.pruners import AshaPruner, forecast_anchors
from tests.engine.helpers import make_spec, rebuilt
from tests.engine.test_pruners import _study


def curve(final: float, tau: float, steps: range, start: float = 4.0) -> dict[int, float]:
    return {s: final + (start - final) * math.exp(-s / tau) for s in steps}


def test_forecast_recovers_the_final_value_of_an_exponential_curve() -> None:
    points = list(curve(1.0, 150.0, range(25, 226, 25)).items())
    assert forecast(points, 1000) == pytest.approx(1.0 + 3.0 * math.exp(-1000 / 150), abs=0.02)


def test_forecast_needs_four_points_and_never_beats_a_stalled_curve() -> None:
    # Through three points the three-parameter fit is exact whatever the curve.
    assert forecast([(25, 3.0), (50, 2.0), (75, 1.5)], 1000) is None
    assert forecast([(25, 3.0), (50, float("nan")), (75, 2.0), (100, 1.8)], 1000) is None
    # A curve going up (or flat) forecasts its last value, not an extrapolated rise.
    assert forecast([(25, 1.0), (50, 1.5), (75, 2.0), (100, 2.5)], 1000) == pytest.approx(2.5)


def test_no_forecast_while_the_descent_speeds_up() -> None:
    # Warmup: the loss falls faster and faster; no level in sight, so no forecast (the
    # fine-tuning table's short runs pruned their best trial on such forecasts).
    assert forecast([(5, 3.9), (10, 3.8), (15, 3.5), (20, 2.9)], 40) is None
    assert forecast([(5, 3.9), (10, 3.3), (15, 2.9), (20, 2.7)], 40) is not None


def test_forecast_keeps_the_slow_starter_plain_asha_stops() -> None:
    # Fast learning rates: low early loss, worse end (final 1.3..1.5, tau 30); the slow
    # starter ends at 1.0 (tau 150) but is last at the rung (step 100).
    steps = range(25, 1001, 25)
    curves = {n: curve(1.3 + 0.1 * n, 30.0, steps) for n in range(3)}
    curves[3] = {s: v for s, v in curve(1.0, 150.0, steps).items() if s <= 100}
    study = _study(curves, running=3)
    plain = AshaPruner(100, 3, max_steps=1000)
    ahead = AshaPruner(100, 3, max_steps=1000, forecast_to=1000)
    assert plain.prune(study, study.trials[3])
    assert not ahead.prune(study, study.trials[3])
    # ... and still stops a trial that is slow and ends badly.
    curves[3] = {s: v for s, v in curve(2.5, 150.0, steps).items() if s <= 100}
    study = _study(curves, running=3)
    assert ahead.prune(study, study.trials[3])


def test_forecast_anchors_put_three_points_before_each_rung() -> None:
    assert forecast_anchors([75, 225, 675], top=225) == [18, 37, 56, 112, 168]
    assert forecast_anchors([75, 225], top=-1) == []


def test_engine_keeps_points_for_forecasts_and_decides_the_same_after_a_rebuild() -> None:
    early = {"name": "asha", "minSteps": 100, "reductionFactor": 3, "forecast": True}
    spec = make_spec(
        trainer={"maxSteps": 1000, "evalEvery": 25},
        earlyStopping=early,
        budget={"maxTrials": 12, "parallelism": 4},
    )
    engine = SweepEngine(spec, "fc")
    position: dict[int, int] = {}
    finals = [1.4, 1.0, 1.5, 1.3, 1.6, 1.2, 1.05, 1.7, 1.35, 1.1, 1.45, 1.25]
    while engine.finished() is None:
        for plan in engine.start_trials():
            assert plan.number < len(finals)
        for number in engine.running():
            # Trial 1 (best end) starts slowest; the rest descend fast.
            tau = 150.0 if number == 1 else 30.0
            step = position[number] = position.get(number, 0) + 25
            engine.report(number, step, finals[number] + 3 * math.exp(-step / tau))
            if step >= 1000:
                engine.complete(number, [finals[number]], step)
        doomed = engine.to_prune()
        assert rebuilt(engine).to_prune() == doomed
        for number in doomed:
            engine.prune(number)
    kept = [s for s, _ in engine.trial(1).intermediate or []]
    assert len([s for s in kept if s <= 100]) >= 4  # 25, 50, 75, 100: a forecast at rung 100
    assert engine.counts().pruned > 0
    best = engine.best()
    assert best is not None and best.number == 1
