"""The benchmark functions reproduce their published optima."""

import math

import pytest
from bench.problems import (
    BRANIN_MINIMIZERS,
    BRANIN_MINIMUM,
    HARTMANN6,
    HARTMANN6_MINIMIZER,
    HARTMANN6_MINIMUM,
    LearningCurve,
    branin,
    hartmann6,
)


@pytest.mark.parametrize("point", BRANIN_MINIMIZERS)
def test_branin_minimum_at_its_three_minimizers(point: tuple[float, float]) -> None:
    assert branin(*point) == pytest.approx(BRANIN_MINIMUM, abs=1e-5)


def test_branin_elsewhere_is_higher() -> None:
    assert branin(0.0, 0.0) == pytest.approx(55.602113, abs=1e-5)
    assert branin(-5.0, 0.0) > BRANIN_MINIMUM


def test_hartmann6_minimum() -> None:
    assert hartmann6(HARTMANN6_MINIMIZER) == pytest.approx(HARTMANN6_MINIMUM, abs=1e-5)
    assert hartmann6([0.5] * 6) > HARTMANN6_MINIMUM + 2
    assert HARTMANN6.objective(
        dict(zip(["x1", "x2", "x3", "x4", "x5", "x6"], HARTMANN6_MINIMIZER, strict=True))
    ) == pytest.approx(HARTMANN6_MINIMUM, abs=1e-5)


def test_learning_curves_decay_to_their_final_value() -> None:
    problem = LearningCurve(noise=0.0)
    best = {"learning_rate": 10**-2.5, "warmup_ratio": 0.06, "weight_decay": 0.1}
    assert problem.final(best) == pytest.approx(1.0)
    curve = problem.curve(best, seed=0)
    assert curve[0][0] == 25 and curve[-1][0] == 1000
    assert curve[0][1] > curve[-1][1] == pytest.approx(1.0, abs=0.01)
    fast = {**best, "learning_rate": 0.05}
    # The fast run leads early and loses at the end: the trap a pruner must survive.
    assert problem.curve(fast, 0)[1][1] < problem.curve(best, 0)[1][1]
    assert problem.final(fast) > problem.final(best) + 0.3
    assert not math.isnan(problem.tau(fast))
