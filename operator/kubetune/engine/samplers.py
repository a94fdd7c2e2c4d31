"""Samplers for each spec algorithm, wrapped so a rebuilt engine suggests what the live one would.

Every ask gets a fresh inner sampler seeded from (sweep seed, trial number). The inner sampler
then sees only the trials in the study, which a rebuild from history restores exactly, so the
suggestion for trial N does not depend on how many asks this process happened to make before.
"""

import contextlib
import importlib.util
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    GridSampler,
    NSGAIISampler,
    QMCSampler,
    RandomSampler,
    TPESampler,
)
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from kubetune.engine.space import SearchSpace
from kubetune.spec import Algorithm

# (seed for this ask, trial number) -> the sampler that suggests that trial's parameters.
SamplerFactory = Callable[[int, int], BaseSampler]

# Tuned with bench/search_efficiency.py (see bench/results/search_efficiency.md): multivariate
# TPE models parameter interactions, and constant liar keeps parallel asks apart.
DEFAULT_STARTUP_TRIALS = 10
TPE_EI_CANDIDATES = 24
TPE_CONSTANT_LIAR = True
# With parallel trials, TPE takes over once this many have finished (not all startup ones).
TPE_MIN_OBSERVATIONS = 3
# The same for the GP of `auto`: with fewer finished trials it falls back to random points.
GP_MIN_OBSERVATIONS = 3

# `auto` asks a Gaussian process while that is cheap and suits the space, then TPE. Measured
# with bench/search_peers.py (bench/results/search_peers.md): Optuna's GPSampler finds the
# optimum of small numeric problems in far fewer trials than TPE; its asks cost O(n^3) in
# the finished trials (~0.2 s at 300, seconds at 1000 on one core), so later trials use TPE.
AUTO_GP_MAX_PARAMS = 12
AUTO_GP_MAX_CHOICES = 8  # per categorical parameter: more, and the GP's kernel fits poorly
AUTO_GP_TRIALS = 300  # trials numbered below this are asked of the GP


# One Gaussian-process fit at a time per process, whichever sweep asks: each holds torch
# working memory, and two at once set the operator's peak. Measured with
# bench/operator_overhead.py's scale part (50 sweeps, 2 engine threads): peak RSS 536-553 MB
# with GP asks side by side, 487-496 MB with this lock (486 MB with one engine thread). TPE,
# random and every tell still run beside a GP ask, so a long one does not hold up the other
# sweeps' work.
_GP_ASK = threading.Lock()


def trial_seed(seed: int, number: int) -> int:
    """The RNG seed for the ask of trial ``number``: stable across processes and restarts."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def auto_uses_gp(space: SearchSpace, objectives: int, number: int) -> bool:
    """Whether `auto` asks the GP for trial ``number`` (else TPE).

    A pure function of the spec and the trial number, so a rebuilt engine decides alike:
    one objective, at most AUTO_GP_MAX_PARAMS parameters, no categorical with more than
    AUTO_GP_MAX_CHOICES choices, and a trial number below AUTO_GP_TRIALS.
    """
    if objectives != 1 or number >= AUTO_GP_TRIALS:
        return False
    if len(space.distributions) > AUTO_GP_MAX_PARAMS:
        return False
    return all(
        len(d.choices) <= AUTO_GP_MAX_CHOICES
        for d in space.distributions.values()
        if isinstance(d, CategoricalDistribution)
    )


def startup_trials(algorithm: Algorithm, max_trials: int) -> int:
    """Random trials before a model-based sampler takes over; at most a quarter of the budget."""
    if algorithm.startup_trials is not None:
        return algorithm.startup_trials
    return max(2, min(DEFAULT_STARTUP_TRIALS, max_trials // 4))


class _NumberedQMCSampler(QMCSampler):
    """QMC point N for trial N.

    Optuna's QMCSampler counts its draws in a study attribute, which a rebuild from history
    does not restore; indexing the sequence by trial number needs no such memory.
    """

    def __init__(self, space: dict[str, BaseDistribution], seed: int) -> None:
        super().__init__(qmc_type="sobol", scramble=True, seed=seed)
        self._space = space
        self._number = 0

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._number = trial.number
        super().before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._space)  # the space is fixed, so the first trial is a QMC point too

    def _find_sample_id(self, study: Study, search_space: dict[str, BaseDistribution]) -> int:
        return self._number


def _require_torch(name: str) -> None:
    if importlib.util.find_spec("torch") is None:
        raise ValueError(
            f"algorithm.name: {name} needs PyTorch installed where the engine runs "
            "(pip install 'kubetune[operator]')"
        )


def _tpe(seed: int, startup: int) -> BaseSampler:
    return TPESampler(
        seed=seed,
        n_startup_trials=min(startup, TPE_MIN_OBSERVATIONS),
        n_ei_candidates=TPE_EI_CANDIDATES,
        multivariate=True,
        constant_liar=TPE_CONSTANT_LIAR,
    )


def _factory(
    algorithm: Algorithm, space: SearchSpace, seed: int, max_trials: int, objectives: int
) -> SamplerFactory:
    startup = startup_trials(algorithm, max_trials)
    name = algorithm.name
    if name in ("tpe", "auto"):
        if name == "auto":
            _require_torch(name)
        # TPE's startup trials are Sobol points rather than random ones: they cover the
        # space evenly, and trial N's point depends on N alone.
        sobol = _NumberedQMCSampler(dict(space.distributions), seed)

        def model_based(s: int, number: int) -> BaseSampler:
            gp = name == "auto" and auto_uses_gp(space, objectives, number)
            if number < startup:
                # Before a GP, random points (as Optuna's GPSampler has): after Sobol ones
                # the GP sat in a local optimum of Hartmann6 in 3 seeds of 3 (regret
                # 0.04-0.6 at 100 trials), after random ones it found the optimum (<= 0.008).
                return RandomSampler(seed=s) if gp else sobol
            if gp:
                return GPSampler(
                    seed=s,
                    n_startup_trials=min(startup, GP_MIN_OBSERVATIONS),
                    warn_independent_sampling=False,
                )
            return _tpe(s, startup)

        return model_based
    if name == "random":
        return lambda s, n: RandomSampler(seed=s)
    if name == "grid":
        # One shuffled grid for the whole sweep: trial N takes grid point N, so the order
        # must not change between asks.
        grid = GridSampler(space.grid(), seed=seed)
        return lambda s, n: grid
    if name == "gp":
        _require_torch(name)
        return lambda s, n: GPSampler(
            seed=s, n_startup_trials=startup, warn_independent_sampling=False
        )
    if name == "cmaes":
        return lambda s, n: CmaEsSampler(
            seed=s, n_startup_trials=startup, warn_independent_sampling=False
        )
    if name == "qmc":
        qmc = _NumberedQMCSampler(dict(space.distributions), seed)
        return lambda s, n: qmc
    if name == "nsga2":
        population = max(4, min(50, max_trials // 5))
        return lambda s, n: NSGAIISampler(seed=s, population_size=population)
    raise ValueError(f"algorithm.name: unknown algorithm {name!r}")


class TrialSeededSampler(BaseSampler):
    """Delegates to a fresh inner sampler per trial and rounds what it suggests."""

    def __init__(self, factory: SamplerFactory, seed: int, space: SearchSpace) -> None:
        self._factory = factory
        self._seed = seed
        self._space = space
        self._inner = factory(seed, 0)

    @property
    def inner(self) -> BaseSampler:
        return self._inner

    def reseed_rng(self) -> None:
        pass  # seeds come from trial numbers; a random reseed would break rebuilds

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._inner = self._factory(trial_seed(self._seed, trial.number), trial.number)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        one_at_a_time = _GP_ASK if isinstance(self._inner, GPSampler) else contextlib.nullcontext()
        with one_at_a_time:
            sampled = self._inner.sample_relative(study, trial, search_space)
        return {name: self._space.round(name, value) for name, value in sampled.items()}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        value = self._inner.sample_independent(study, trial, param_name, param_distribution)
        return self._space.round(param_name, value)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        # GridSampler's hook only calls study.stop(), which is for optimize() loops; the
        # engine decides exhaustion itself.
        if not isinstance(self._inner, GridSampler):
            self._inner.after_trial(study, trial, state, values)


def make_sampler(
    algorithm: Algorithm, space: SearchSpace, seed: int, max_trials: int, objectives: int = 1
) -> TrialSeededSampler:
    """The sampler for ``algorithm``, deterministic per (seed, trial number)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        factory = _factory(algorithm, space, seed, max_trials, objectives)
        return TrialSeededSampler(factory, seed, space)
