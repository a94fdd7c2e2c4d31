"""Benchmark problems with known optima, written from their published formulas.

Branin and Hartmann6: Dixon & Szegö (1978), as tabulated in the Virtual Library of
Simulation Experiments (Surjanovic & Bingham). The learning-curve problem is ours: noisy
exponential decays whose speed and final value depend on the parameters, with fast-but-worse
settings so that early values can mislead a pruner.
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Params = dict[str, Any]

BRANIN_MINIMUM = 0.397887
BRANIN_MINIMIZERS = ((-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475))

HARTMANN6_MINIMUM = -3.32237
HARTMANN6_MINIMIZER = (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)

_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def branin(x1: float, x2: float) -> float:
    a, b, c = 1.0, 5.1 / (4 * math.pi**2), 5 / math.pi
    r, s, t = 6.0, 10.0, 1 / (8 * math.pi)
    return a * (x2 - b * x1**2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


def hartmann6(x: Sequence[float]) -> float:
    point = np.asarray(x, dtype=float)
    inner = np.sum(_H6_A * (point - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


@dataclass(frozen=True)
class Problem:
    """A minimization problem over a spec search space."""

    name: str
    parameters: list[dict[str, Any]]
    grid: list[dict[str, Any]]  # the same space as a grid of about the benchmark budget
    objective: Callable[[Params], float]
    minimum: float


def _cell_centers(name: str, low: float, high: float, count: int) -> dict[str, Any]:
    step = (high - low) / count
    return {
        "name": name,
        "type": "float",
        "min": low + step / 2,
        "max": high - step / 2,
        "step": step,
    }


BRANIN = Problem(
    name="branin",
    parameters=[
        {"name": "x1", "type": "float", "min": -5.0, "max": 10.0},
        {"name": "x2", "type": "float", "min": 0.0, "max": 15.0},
    ],
    grid=[_cell_centers("x1", -5.0, 10.0, 10), _cell_centers("x2", 0.0, 15.0, 10)],
    objective=lambda p: branin(p["x1"], p["x2"]),
    minimum=BRANIN_MINIMUM,
)

_H6_NAMES = [f"x{i}" for i in range(1, 7)]

HARTMANN6 = Problem(
    name="hartmann6",
    parameters=[{"name": n, "type": "float", "min": 0.0, "max": 1.0} for n in _H6_NAMES],
    # 2 levels per axis (64 points): 3 would be 729, far past the budget.
    grid=[_cell_centers(n, 0.0, 1.0, 2) for n in _H6_NAMES],
    objective=lambda p: hartmann6([p[n] for n in _H6_NAMES]),
    minimum=HARTMANN6_MINIMUM,
)


@dataclass(frozen=True)
class LearningCurve:
    """Simulated training runs: eval loss at each step for given hyperparameters.

    loss(t) = final + (start - final) * exp(-t / tau) + noise. The final loss is best at a
    learning rate of about 3e-3, warmup 0.06 and weight decay 0.1. Warmup slows early
    progress (tau grows with it) and a higher learning rate speeds it up (``speedup`` per
    10x), so curves cross: the leader early on is not always the leader at the end. With
    a large ``speedup`` that crossing points pruning the wrong way (short-horizon bias).
    """

    max_steps: int = 1000
    eval_every: int = 25
    noise: float = 0.01
    start: float = 4.0
    speedup: float = 1.4
    tau_at_optimum: float = 100.0  # decay time (steps) at the best settings

    parameters = (
        {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-1, "log": True},
        {"name": "warmup_ratio", "type": "float", "min": 0.0, "max": 0.2},
        {"name": "weight_decay", "type": "float", "min": 0.0, "max": 0.3},
    )

    def final(self, params: Params) -> float:
        """The noise-free loss the run converges to; its minimum is 1.0."""
        log_lr = math.log10(params["learning_rate"])
        return (
            1.0
            + 0.25 * (log_lr + 2.5) ** 2
            + 2.0 * (params["warmup_ratio"] - 0.06) ** 2
            + 1.0 * (params["weight_decay"] - 0.1) ** 2
        )

    def tau(self, params: Params) -> float:
        """Steps to cover 63% of the way down."""
        log_lr = math.log10(params["learning_rate"])
        lr_factor = 10 ** (-math.log10(self.speedup) * (log_lr + 2.5))
        warmup_factor = (0.5 + 5 * params["warmup_ratio"]) / 0.8  # 1.0 at warmup 0.06
        return float(np.clip(self.tau_at_optimum * lr_factor * warmup_factor, 5.0, 5000.0))

    def curve(self, params: Params, seed: int) -> list[tuple[int, float]]:
        rng = np.random.default_rng(seed)
        final, tau = self.final(params), self.tau(params)
        points = []
        for step in range(self.eval_every, self.max_steps + 1, self.eval_every):
            value = final + (self.start - final) * math.exp(-step / tau)
            points.append((step, value + float(rng.normal(0.0, self.noise))))
        return points
