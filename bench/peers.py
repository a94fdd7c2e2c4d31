"""The searchers a user would pick instead of kubetune's default, as replay.Searcher objects.

- ``kubetune``: SweepEngine with the spec defaults (algorithm auto, earlyStopping none),
  driven the way the operator drives it, so the real sampler and pruner code runs.
  ``kubetune-asha`` is kubetune with the documented pruning setting, for information.
- ``optuna-tpe``: ``TPESampler()``, no pruner; ``optuna-tpe-median``: with
  ``MedianPruner()``; ``optuna-gp``: ``GPSampler()``; ``bohb``: ``TPESampler()`` with
  ``HyperbandPruner()`` (Optuna's BOHB-style recipe). All Optuna defaults, seeded.
- ``ray-asha``: Ray Tune's random search with ``ASHAScheduler()`` semantics at its defaults
  (``time_attr="training_iteration"``, ``grace_period=1``, ``reduction_factor=4``,
  ``brackets=1``; ``max_t`` set to the run's number of reports, as a user would).
  Implemented here (Ray is not needed): ``RayAsha``.
- ``katib``: Katib's ``random`` suggestion with the ``medianstop`` early stopping at its
  documented defaults (``min_trials_required=3``, ``start_step=4``): ``KatibMedianStop``.
- ``random``: plain random search, the floor.
- Optuna's ``AutoSampler`` lives on OptunaHub and is fetched over the network at load
  time; ``auto_sampler_status()`` says whether it could be loaded here.
"""

import math
import socket
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from bench.replay import Params, ReplayProblem, Searcher
from optuna.pruners import BasePruner, HyperbandPruner, MedianPruner, NopPruner
from optuna.samplers import BaseSampler, GPSampler, RandomSampler, TPESampler
from optuna.trial import Trial, TrialState

from kubetune.engine import SweepEngine
from kubetune.engine.space import SearchSpace
from kubetune.spec import SweepSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)

TEMPLATE = {"spec": {"containers": [{"name": "trial", "image": "bench"}]}}

# Ray Tune ASHAScheduler defaults (ray.tune.schedulers.AsyncHyperBandScheduler).
RAY_GRACE_PERIOD = 1
RAY_REDUCTION_FACTOR = 4
# Katib medianstop defaults (kubeflow.org/docs/components/katib/early-stopping/).
KATIB_MIN_TRIALS_REQUIRED = 3
KATIB_START_STEP = 4
# The documented kubetune pruning setting for 1000-step runs (bench/search_efficiency.py).
KUBETUNE_ASHA = {"name": "asha", "minSteps": 50, "reductionFactor": 4}


def spec_for(
    problem: ReplayProblem,
    seed: int,
    workers: int,
    max_trials: int,
    early: dict[str, Any] | None = None,
    algorithm: str | None = None,
) -> SweepSpec:
    """The sweep kubetune runs on ``problem``: the spec's default algorithm unless named."""
    doc: dict[str, Any] = {
        "parameters": problem.parameters,
        "algorithm": {"seed": seed} | ({"name": algorithm} if algorithm else {}),
        "budget": {"maxTrials": max_trials, "parallelism": workers, "maxFailedTrials": 0},
    }
    if early is not None:
        doc["earlyStopping"] = early
    if problem.unit == "steps":
        doc["trainer"] = {"maxSteps": problem.max_steps, "evalEvery": problem.eval_every}
    else:
        doc["template"] = TEMPLATE
    return SweepSpec.model_validate(doc)


def space_for(problem: ReplayProblem) -> SearchSpace:
    return SearchSpace.from_spec(spec_for(problem, 0, 1, 1))


def user_max_trials(problem: ReplayProblem, budget: float) -> int:
    """maxTrials a user would write for this compute: as many full runs as it buys."""
    return max(1, math.ceil(budget if problem.unit == "trials" else budget / problem.max_steps))


class KubetuneSearcher:
    """SweepEngine as the operator drives it: start_trials, report, to_prune, complete."""

    def __init__(self, spec: SweepSpec, name: str) -> None:
        self.engine = SweepEngine(spec, name)
        self._queue: list[tuple[int, Params]] = []

    def ask(self) -> tuple[int, Params] | None:
        if not self._queue:
            self._queue = [(p.number, dict(p.params)) for p in self.engine.start_trials()]
        return self._queue.pop(0) if self._queue else None

    def report(self, number: int, step: int, value: float, last: bool) -> bool:
        self.engine.report(number, step, value)
        if last or number not in self.engine.to_prune():
            return False
        # Other trials to_prune names are stopped at their own next report: the operator
        # acts on them at its next reconcile, a moment later.
        self.engine.prune(number)
        return True

    def complete(self, number: int, value: float, step: int) -> None:
        self.engine.complete(number, [value], step)


class OptunaSearcher:
    """An Optuna study used with ask/tell, as a user's own tuning loop would."""

    def __init__(
        self, space: SearchSpace, sampler: BaseSampler, pruner: BasePruner, name: str = "bench"
    ) -> None:
        self.space = space
        # A named study: HyperbandPruner assigns brackets by a hash of the study's name and
        # the trial number, so an unnamed (randomly named) study is not repeatable.
        self.study = optuna.create_study(
            study_name=name, direction="minimize", sampler=sampler, pruner=pruner
        )
        self._trials: dict[int, Trial] = {}

    def ask(self) -> tuple[int, Params] | None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.study.ask(dict(self.space.distributions))
        self._trials[trial.number] = trial
        return trial.number, self.space.to_user(trial.params)

    def report(self, number: int, step: int, value: float, last: bool) -> bool:
        trial = self._trials[number]
        trial.report(value, step)
        if last or not trial.should_prune():
            return False
        self.study.tell(trial, state=TrialState.PRUNED)
        return True

    def complete(self, number: int, value: float, step: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.study.tell(self._trials.pop(number), value)


@dataclass
class RayAsha:
    """Ray Tune's AsyncHyperBandScheduler with one bracket, on top of random search.

    Rungs at ``grace_period * reduction_factor**k`` results (k while below max_t). When a
    trial's result count first reaches a rung (highest first), the cutoff is the
    ``(1 - 1/reduction_factor)`` percentile of the rewards already recorded there (reward
    = -loss), computed before its own value is recorded; the trial stops if its reward is
    below the cutoff, and its value is recorded either way.
    """

    random: OptunaSearcher
    max_t: int
    grace_period: int = RAY_GRACE_PERIOD
    reduction_factor: int = RAY_REDUCTION_FACTOR
    _rungs: list[tuple[int, dict[int, float]]] = field(default_factory=list, init=False)
    _results: dict[int, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        count = int(np.log(self.max_t / self.grace_period) / np.log(self.reduction_factor) + 1)
        self._rungs = [
            (self.grace_period * self.reduction_factor**k, {}) for k in reversed(range(count))
        ]

    def ask(self) -> tuple[int, Params] | None:
        asked = self.random.ask()
        if asked is not None:
            self._results[asked[0]] = 0
        return asked

    def report(self, number: int, step: int, value: float, last: bool) -> bool:
        self._results[number] += 1
        iteration, reward = self._results[number], -value
        stop = False
        for milestone, recorded in self._rungs:
            if iteration < milestone or number in recorded:
                continue
            if recorded:
                cutoff = float(
                    np.nanpercentile(list(recorded.values()), (1 - 1 / self.reduction_factor) * 100)
                )
                stop = reward < cutoff
            recorded[number] = reward
            break
        if stop and not last:
            self.random.study.tell(self.random._trials.pop(number), state=TrialState.PRUNED)
            return True
        return False

    def complete(self, number: int, value: float, step: int) -> None:
        self.random.complete(number, value, step)


@dataclass
class KatibMedianStop:
    """Katib's medianstop over random search.

    When a trial is created, the rule value is the median, over succeeded trials (once
    ``min_trials_required`` have), of each trial's mean reported objective; the trial is
    stopped at its ``start_step``-th report or later when a reported value is worse than
    that median. This follows Katib's medianstop service as we read it; Katib's own code
    was not run here.
    """

    random: OptunaSearcher
    min_trials_required: int = KATIB_MIN_TRIALS_REQUIRED
    start_step: int = KATIB_START_STEP
    _means: list[float] = field(default_factory=list, init=False)
    _rule: dict[int, float | None] = field(default_factory=dict, init=False)
    _values: dict[int, list[float]] = field(default_factory=dict, init=False)

    def ask(self) -> tuple[int, Params] | None:
        asked = self.random.ask()
        if asked is not None:
            ready = len(self._means) >= self.min_trials_required
            self._rule[asked[0]] = statistics.median(self._means) if ready else None
            self._values[asked[0]] = []
        return asked

    def report(self, number: int, step: int, value: float, last: bool) -> bool:
        values = self._values[number]
        values.append(value)
        rule = self._rule[number]
        if last or rule is None or len(values) < self.start_step or value <= rule:
            return False
        self.random.study.tell(self.random._trials.pop(number), state=TrialState.PRUNED)
        del self._values[number]
        return True

    def complete(self, number: int, value: float, step: int) -> None:
        self._means.append(float(np.mean(self._values.pop(number))))
        self.random.complete(number, value, step)


def _optuna(sampler: Callable[[int], BaseSampler], pruner: Callable[[], BasePruner]) -> Any:
    def make(problem: ReplayProblem, seed: int, workers: int, budget: float) -> Searcher:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            name = f"{problem.name}-{seed}"
            return OptunaSearcher(space_for(problem), sampler(seed), pruner(), name)

    return make


def _kubetune(early: dict[str, Any] | None, trials_factor: int) -> Any:
    def make(problem: ReplayProblem, seed: int, workers: int, budget: float) -> Searcher:
        trials = user_max_trials(problem, budget) * trials_factor
        spec = spec_for(problem, seed, workers, trials, early)
        return KubetuneSearcher(spec, f"{problem.name}-{seed}")

    return make


def _ray(problem: ReplayProblem, seed: int, workers: int, budget: float) -> Searcher:
    random = OptunaSearcher(space_for(problem), RandomSampler(seed=seed), NopPruner())
    return RayAsha(random, max_t=max(1, problem.max_steps // problem.eval_every))


def _katib(problem: ReplayProblem, seed: int, workers: int, budget: float) -> Searcher:
    return KatibMedianStop(
        OptunaSearcher(space_for(problem), RandomSampler(seed=seed), NopPruner())
    )


def _gp(seed: int) -> BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GPSampler(seed=seed)


OURS = "kubetune"
OURS_TRIALS_FACTOR = 6

# name -> (factory, what it is, whether it differs from its sampler alone on analytic
# problems: pruners never act on a one-evaluation run, so those arms are skipped there).
SEARCHERS: dict[str, tuple[Any, str, bool]] = {
    # maxTrials is not what ends kubetune's run, as for every peer (none has a trial cap):
    # the compute budget does. Below spec/auto_pruning.AUTO_PARALLELISM trials at once the
    # default does not prune and the budget buys the same trials, but the startup design
    # (a quarter of maxTrials, at most 10 random trials) is then 10 rather than 7-8.
    OURS: (
        _kubetune(None, OURS_TRIALS_FACTOR),
        "SweepEngine, spec defaults (algorithm auto, earlyStopping auto); maxTrials 6x what "
        "the compute buys unpruned, so the compute ends the run",
        False,
    ),
    "kubetune-asha": (
        _kubetune(KUBETUNE_ASHA, 4),
        "SweepEngine, earlyStopping asha minSteps 50 rf 4 (informational, not a peer)",
        True,
    ),
    "optuna-tpe": (
        _optuna(lambda s: TPESampler(seed=s), NopPruner),
        "Optuna TPESampler(), no pruner",
        False,
    ),
    "optuna-tpe-median": (
        _optuna(lambda s: TPESampler(seed=s), MedianPruner),
        "Optuna TPESampler() + MedianPruner()",
        True,
    ),
    "optuna-gp": (_optuna(_gp, NopPruner), "Optuna GPSampler(), no pruner", False),
    "bohb": (
        _optuna(lambda s: TPESampler(seed=s), HyperbandPruner),
        "Optuna TPESampler() + HyperbandPruner() (BOHB-style)",
        True,
    ),
    "ray-asha": (_ray, "Ray Tune random search + ASHAScheduler() defaults", True),
    "katib": (_katib, "Katib random + medianstop defaults", True),
    "random": (
        _optuna(lambda s: RandomSampler(seed=s), NopPruner),
        "random search, no pruner",
        False,
    ),
}
INFORMATIONAL = {"kubetune-asha"}  # shown, but not counted as a peer


def auto_sampler_status(timeout: float = 5.0) -> str:
    """Whether OptunaHub's AutoSampler loads here; the reason when it does not."""
    try:
        import optunahub  # optional: only probed
    except ImportError as error:
        return f"unavailable: optunahub is not installed ({error})"
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        optunahub.load_module("samplers/auto_sampler")
    except Exception as error:  # any failure: unavailable, say which
        text = str(error).splitlines()[0][:200] if str(error) else ""
        return (
            f"unavailable: optunahub {optunahub.__version__} is installed, but "
            f"load_module('samplers/auto_sampler') fetches the sampler's code from GitHub at "
            f"run time and the network is unreachable here ({type(error).__name__}: {text})"
        )
    finally:
        socket.setdefaulttimeout(previous)
    return "loadable"


SLOW = {"optuna-gp"}  # a GP ask takes ~0.1-1 s on 2 shared cores: --slow-seeds limits its seeds
