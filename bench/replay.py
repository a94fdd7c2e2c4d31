"""Play a (sampler, pruner, parallelism) against a problem on a simulated clock.

A problem hands out *runs*: the evaluations a trial with given parameters would report,
as (step, value) points, and the quality the run stands for. Three kinds:

- ``AnalyticProblem``: Branin, Hartmann6. One evaluation at step 1; compute is counted
  in trials.
- ``SyntheticCurves``: bench/problems.LearningCurve, noisy curves drawn per trial.
- ``TabularCurves``: recorded learning curves (bench/finetune_curves.py). A suggestion
  is mapped to the nearest *recorded* run in a normalized space (see ``TabularCurves``);
  the searcher is told that run's values and nothing else, so nothing unrecorded leaks.

The clock: ``workers`` slots; a trial started at time t reports its point at step s at
time t + s and holds its slot until it ends or is pruned. Compute is the integral of
busy slots over time, in steps (exact, not rounded to evaluations). A pruner is asked
after every evaluation except the last one, which completes the trial (it is still
reported, so median-style rules see whole curves of finished trials).

The incumbent is what the sweep would report: the finished trial with the best final
value. Its *quality* is what the regret and the compute-to-target figures are measured
on: the value itself for analytic functions, and for curves what the configuration is
worth rather than what one seed of it drew (the noise-free final loss for synthetic
curves, the mean final value over a configuration's recorded seeds for tabular ones).
The searcher sees only the noisy run, as a sweep would.
"""

import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from bench.problems import LearningCurve, Problem

Params = dict[str, Any]
Point = tuple[int, float]


@dataclass(frozen=True)
class Run:
    """What a trial reports (points, in step order) and the quality it stands for."""

    points: list[Point]
    quality: float
    key: str = ""  # which recorded run it is (tabular problems)


class ReplayProblem(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def unit(self) -> str:
        """ "trials" or "steps": what compute is counted in."""
        ...

    @property
    def max_steps(self) -> int: ...

    @property
    def eval_every(self) -> int: ...

    @property
    def best(self) -> float:
        """The reference optimum the targets are relative to."""
        ...

    @property
    def parameters(self) -> list[dict[str, Any]]: ...

    def run(self, params: Params, seed: int) -> Run: ...


@dataclass(frozen=True)
class AnalyticProblem:
    problem: Problem
    unit: str = "trials"
    max_steps: int = 1
    eval_every: int = 1

    @property
    def name(self) -> str:
        return self.problem.name

    @property
    def best(self) -> float:
        return self.problem.minimum

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return list(self.problem.parameters)

    def run(self, params: Params, seed: int) -> Run:
        value = self.problem.objective(params)
        return Run([(1, value)], value)


@dataclass(frozen=True)
class SyntheticCurves:
    name: str
    curves: LearningCurve
    unit: str = "steps"
    best: float = 1.0  # LearningCurve.final's minimum

    @property
    def max_steps(self) -> int:
        return self.curves.max_steps

    @property
    def eval_every(self) -> int:
        return self.curves.eval_every

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return [dict(p) for p in self.curves.parameters]

    def run(self, params: Params, seed: int) -> Run:
        return Run(self.curves.curve(params, seed), self.curves.final(params))


@dataclass(frozen=True)
class Recorded:
    """One recorded training run of a tabular problem."""

    key: str
    params: Params
    points: list[Point]

    @property
    def final(self) -> float:
        return self.points[-1][1]


def normalize(parameters: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> list[float]:
    """Numeric parameters to [0, 1] (log scale where the parameter is log), in spec order.

    Categorical parameters are left out here; ``distance`` counts a mismatch as 1.
    """
    out = []
    for p in parameters:
        if p["type"] == "categorical":
            continue
        low, high, value = float(p["min"]), float(p["max"]), float(params[p["name"]])
        if p.get("log"):
            low, high, value = math.log(low), math.log(high), math.log(value)
        out.append(0.0 if high == low else (value - low) / (high - low))
    return out


def random_point(parameters: Sequence[Mapping[str, Any]], rng: np.random.Generator) -> Params:
    """A uniform point of the space (log-uniform where log), drawn in spec order; numeric
    values unrounded (an int parameter's too: the caller rounds as it needs)."""
    point: Params = {}
    for p in parameters:
        if p["type"] == "categorical":
            point[p["name"]] = p["values"][int(rng.integers(len(p["values"])))]
        else:
            point[p["name"]] = from_unit(p, float(rng.random()))
    return point


def from_unit(p: Mapping[str, Any], u: float) -> float:
    """``normalize``'s inverse for one numeric parameter: u in [0, 1] to its value."""
    low, high = float(p["min"]), float(p["max"])
    return low * (high / low) ** u if p.get("log") else low + (high - low) * u


def distance(
    parameters: Sequence[Mapping[str, Any]], a: Mapping[str, Any], b: Mapping[str, Any]
) -> float:
    numeric = np.subtract(normalize(parameters, a), normalize(parameters, b))
    mismatches = sum(
        1 for p in parameters if p["type"] == "categorical" and a[p["name"]] != b[p["name"]]
    )
    return math.sqrt(float(np.sum(numeric**2)) + mismatches)


@dataclass
class TabularCurves:
    """Recorded runs; a suggestion plays the nearest recorded configuration.

    Nearest: Euclidean distance with every numeric parameter scaled to [0, 1] over its
    range (log range for log parameters) and 1 per differing categorical. Ties go to the
    first recorded. Where a configuration was recorded with several seeds, the trial's
    seed picks one replicate. Only recorded runs are ever returned: the searcher sees
    real curves, at the cost that a fine suggestion between recorded points is rounded
    to one of them (a sparse table blunts model-based samplers; say so with results).
    bench/surrogate.py measures why a fitted surrogate is not used instead.
    """

    name: str
    parameters_: list[dict[str, Any]]
    runs: list[Recorded]
    unit: str = "steps"
    _groups: dict[str, list[Recorded]] = field(default_factory=dict, init=False)
    _configs: list[tuple[Params, list[float]]] = field(default_factory=list, init=False)
    _means: dict[str, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError(f"{self.name}: no recorded runs")
        for run in self.runs:
            config = _config_key(run.params)
            if config not in self._groups:
                self._groups[config] = []
                self._configs.append((run.params, normalize(self.parameters_, run.params)))
            self._groups[config].append(run)
        self.max_steps = max(run.points[-1][0] for run in self.runs)
        self.eval_every = min(run.points[0][0] for run in self.runs if run.points)
        self._means = {
            config: float(np.mean([run.final for run in group]))
            for config, group in self._groups.items()
        }
        self.best = min(self._means.values())

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return self.parameters_

    @property
    def replicates(self) -> list[int]:
        """How many seeds each configuration was recorded with, in recording order."""
        return [len(group) for group in self._groups.values()]

    def means(self) -> list[float]:
        """Every configuration's mean final value over its seeds, in recording order."""
        return list(self._means.values())

    def finals_by_config(self) -> list[list[float]]:
        """Every configuration's final values, one per recorded seed, in recording order."""
        return [[run.final for run in group] for group in self._groups.values()]

    def configs(self) -> list[Params]:
        """Every configuration's parameters, in recording order."""
        return [params for params, _ in self._configs]

    def quality(self, params: Mapping[str, Any]) -> float:
        """A recorded configuration's mean final value over its seeds."""
        return self._means[_config_key(params)]

    def nearest(self, params: Mapping[str, Any], seed: int) -> Recorded:
        best_index, best_distance = 0, math.inf
        for index, (recorded, _) in enumerate(self._configs):
            d = distance(self.parameters_, params, recorded)
            if d < best_distance:
                best_index, best_distance = index, d
        replicates = self._groups[_config_key(self._configs[best_index][0])]
        return replicates[seed % len(replicates)]

    def run(self, params: Params, seed: int) -> Run:
        recorded = self.nearest(params, seed)
        return Run(list(recorded.points), self.quality(recorded.params), recorded.key)


def _config_key(params: Mapping[str, Any]) -> str:
    return repr(sorted(params.items()))


class Searcher(Protocol):
    """A sampler and pruner pair as the clock drives it."""

    def ask(self) -> tuple[int, Params] | None:
        """A new trial, or None when the searcher will start no more."""
        ...

    def report(self, number: int, step: int, value: float, last: bool) -> bool:
        """An evaluation; True to stop the trial now (never asked for the last one)."""
        ...

    def complete(self, number: int, value: float, step: int) -> None: ...


@dataclass
class Trace:
    """Incumbent quality after each change, against compute spent when it changed."""

    compute: list[float] = field(default_factory=list)
    quality: list[float] = field(default_factory=list)
    spent: float = 0.0
    trials: int = 0
    completed: int = 0
    pruned: int = 0

    def quality_at(self, budget: float) -> float:
        """The incumbent's quality once ``budget`` compute was spent (inf: none yet)."""
        best = math.inf
        for c, q in zip(self.compute, self.quality, strict=True):
            if c > budget:
                break
            best = q
        return best

    def compute_to(self, threshold: float) -> float:
        """Compute spent when the incumbent's quality first reached ``threshold``."""
        for c, q in zip(self.compute, self.quality, strict=True):
            if q <= threshold:
                return c
        return math.inf


def trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed, number, 7]).generate_state(1)[0])


def play(
    problem: ReplayProblem,
    searcher: Searcher,
    workers: int,
    budget: float,
    seed: int,
) -> Trace:
    """Run ``searcher`` on ``problem`` with ``workers`` slots until ``budget`` compute.

    Deterministic for a seed: ties on the clock go to the lower trial number.
    """
    scale = 1.0 if problem.unit == "steps" else 1.0 / problem.max_steps
    trace = Trace()
    events: list[tuple[float, int, int]] = []  # (time, trial number, point index)
    runs: dict[int, Run] = {}
    starts: dict[int, float] = {}
    now = 0.0
    incumbent = (math.inf, math.inf)  # (reported final value, quality)
    asking = True

    def fill() -> None:
        nonlocal asking
        while asking and len(runs) < workers and trace.spent < budget:
            asked = searcher.ask()
            if asked is None:
                asking = False
                return
            number, params = asked
            run = problem.run(params, trial_seed(seed, number))
            runs[number], starts[number] = run, now
            trace.trials += 1
            heapq.heappush(events, (now + run.points[0][0], number, 0))

    fill()
    while events and trace.spent < budget:
        time, number, index = heapq.heappop(events)
        trace.spent += len(runs) * (time - now) * scale
        now = time
        run = runs[number]
        step, value = run.points[index]
        last = index == len(run.points) - 1
        stop = searcher.report(number, step, value, last)
        if last:
            searcher.complete(number, value, step)
            trace.completed += 1
            if value < incumbent[0]:
                incumbent = (value, run.quality)
                trace.compute.append(trace.spent)
                trace.quality.append(run.quality)
        elif stop:
            trace.pruned += 1
        else:
            heapq.heappush(events, (starts[number] + run.points[index + 1][0], number, index + 1))
            continue
        del runs[number], starts[number]
        fill()
    return trace


Factory = Callable[[ReplayProblem, int, int, float], Searcher]
"""(problem, seed, workers, budget) -> a fresh searcher."""
