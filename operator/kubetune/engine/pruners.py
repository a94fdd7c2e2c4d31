"""Pruners for each spec earlyStopping name, as Optuna pruners whose decisions are pure.

All of them read only the intermediate values in the study, which are exactly the ones the
history keeps, and tolerate trials reporting at different steps (metrics are scraped).

Optuna's successive-halving pruners remember which rungs a trial passed in trial attributes
written at the moment of each check, so their decisions depend on when checks happened and
are lost on a rebuild from history. The ASHA and Hyperband pruners here decide from the
intermediate values alone: given the same history they prune the same trials.

Rung k of ASHA sits at ``min_steps * reduction_factor**k`` steps. A trial's value at a rung is
its first recorded value at or after that step. A running trial is judged at the highest rung
it has reached, against every trial that reached that rung, and continues while it is among
the best ``ceil(n / reduction_factor)`` of those ``n``. Unlike Optuna's ASHA, a trial that
passed a rung can still be stopped there when better trials arrive before it reaches the
next one: the history keeps no arrival times, and this frees its slot for better trials.
On bench/search_efficiency.py's learning curves this spent 0.27 of the steps of no pruning
where judging against earlier arrivals only spent 0.36, with best values within 0.2%.

With ``forecast`` (earlyStopping.forecast), ASHA ranks trials at a rung by a forecast of
their value at the last step instead of their value at the rung: a fast learning rate
that gives a low early loss but a worse final one no longer pushes out the slow starter
that ends best (bench/pruning.py: the lr-coupled curves). The forecast (engine/forecast.py)
is a pure function of the points kept up to the rung, so it too decides the same after a
rebuild.

engine/mo_asha.py is ASHA for several objectives on the same rungs.
"""

import math
import statistics
import zlib
from collections.abc import Sequence

from optuna.pruners import BasePruner, NopPruner
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from kubetune.engine.forecast import forecast
from kubetune.spec import EarlyStopping

# Hyperband needs a top resource; without trainer.maxSteps assume this many halvings.
DEFAULT_HYPERBAND_RUNGS = 4


def rung_value(intermediate: dict[int, float], resource: int) -> float | None:
    """The first value recorded at or after ``resource`` steps, if any."""
    steps = [step for step in intermediate if step >= resource]
    if not steps:
        return None
    value = intermediate[min(steps)]
    return None if math.isnan(value) else value


def survives(value: float, competitors: list[float], eta: int, maximize: bool) -> bool:
    """True when ``value`` is among the best ceil(n/eta) of ``competitors`` (which include it)."""
    keep = max(1, math.ceil(len(competitors) / eta))
    ranked = sorted(competitors, reverse=maximize)
    threshold = ranked[keep - 1]
    return value >= threshold if maximize else value <= threshold


def value_at(intermediate: dict[int, float], step: int) -> float | None:
    """The last value recorded at or before ``step``, if any."""
    steps = [s for s in intermediate if s <= step]
    return intermediate[max(steps)] if steps else None


def rung_score(
    intermediate: dict[int, float], resource: int, horizon: int | None, maximize: bool
) -> float | None:
    """A trial's value at a rung: the rung value, or with a horizon its forecast there.

    The forecast uses only the points up to the rung (every trial is judged on the same
    information, whenever the check happens); with too few points it is the rung value.
    """
    at_rung = rung_value(intermediate, resource)
    if at_rung is None or horizon is None:
        return at_rung
    sign = -1.0 if maximize else 1.0
    # Up to the first point at or after the rung: the one rung_value reads.
    last = min(step for step in intermediate if step >= resource)
    points = [(s, sign * v) for s, v in intermediate.items() if s <= last]
    ahead = forecast(points, horizon)
    return at_rung if ahead is None else sign * ahead


class MedianPruner(BasePruner):
    """Stop a trial whose latest value is worse than the median of finished trials there.

    Optuna's MedianPruner compares values at exactly the same step; trials read through
    Prometheus report whatever step a scrape caught, so here each finished trial
    contributes its last value at or before the running trial's step.
    """

    def __init__(self, startup_trials: int, min_steps: int) -> None:
        self._startup = startup_trials
        self._min_steps = min_steps

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self._min_steps:
            return False
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(finished) < max(1, self._startup):
            return False
        peers = [v for t in finished if (v := value_at(t.intermediate_values, step)) is not None]
        if not peers:
            return False
        median = statistics.median(peers)
        own = trial.intermediate_values[step]
        return own < median if study.direction == StudyDirection.MAXIMIZE else own > median


class AshaPruner(BasePruner):
    """Asynchronous successive halving, decided from intermediate values only."""

    def __init__(
        self,
        min_steps: int,
        reduction_factor: int,
        max_steps: int | None = None,
        bracket_of: "Bracketing | None" = None,
        forecast_to: int | None = None,
    ) -> None:
        self._min_steps = min_steps
        self._eta = reduction_factor
        self._bracket_of = bracket_of
        self._horizon = forecast_to
        # The last rung is the highest at or before half the run: a trial that passes it
        # runs to the end (a later rung would save less than half of a run). Requiring the
        # next rung to fit before max_steps instead, as ASHA does when max/min is a power of
        # eta, dropped the rung at half the run otherwise: 40 steps from 5 by 4 kept one
        # rung, which had to stop 3 in 4 trials after their first evaluation, where Ray
        # Tune's ASHA judges at 5 and 20 (bench/results/rung_rule_probe.md).
        # The first rung is kept whenever it lies before the end, since the user asked for
        # it; a rung at max_steps itself (Hyperband's last bracket) prunes nothing.
        self._top: int | None = None
        if max_steps is not None:
            if min_steps >= max_steps:
                self._top = -1
            else:
                self._top = 0
                while 2 * min_steps * reduction_factor ** (self._top + 1) <= max_steps:
                    self._top += 1

    @property
    def eta(self) -> int:
        return self._eta

    @property
    def top_resource(self) -> int | None:
        """Steps of the last rung that judges (None: no cap; -1: none judges)."""
        if self._top is None:
            return None
        return -1 if self._top < 0 else self._min_steps * self._eta**self._top

    def resource(self, step: int) -> int | None:
        """Steps of the rung a trial at ``step`` is judged at, or None (not judged)."""
        rung = self._rung(step)
        return None if rung is None else self._min_steps * self._eta**rung

    def _rung(self, step: int) -> int | None:
        if step < self._min_steps or (self._top is not None and self._top < 0):
            return None
        rung = 0
        while self._min_steps * self._eta ** (rung + 1) <= step:
            rung += 1
        return rung if self._top is None else min(rung, self._top)

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        resource = self.resource(step)
        if resource is None:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        own = rung_score(trial.intermediate_values, resource, self._horizon, maximize)
        if own is None:
            return False
        competitors = [own]
        for other in study.get_trials(deepcopy=False):
            if other.number == trial.number:
                continue
            if self._bracket_of is not None and self._bracket_of(other.number) != self._bracket_of(
                trial.number
            ):
                continue
            value = rung_score(other.intermediate_values, resource, self._horizon, maximize)
            if value is not None:
                competitors.append(value)
        return not survives(own, competitors, self._eta, maximize)


class Bracketing:
    """Hyperband's bracket of a trial: a stable hash of (sweep, number), weighted by budget."""

    def __init__(self, sweep_name: str, n_brackets: int, eta: int) -> None:
        self._name = sweep_name
        # Bracket b starts at min_steps * eta**b; give it as many trials as Hyperband would.
        self._weights = [
            math.ceil(n_brackets * eta ** (n_brackets - 1 - b) / (n_brackets - b))
            for b in range(n_brackets)
        ]
        self._total = sum(self._weights)

    def __call__(self, number: int) -> int:
        slot = zlib.crc32(f"{self._name}-{number}".encode()) % self._total
        for bracket, weight in enumerate(self._weights):
            if slot < weight:
                return bracket
            slot -= weight
        return len(self._weights) - 1

    @property
    def count(self) -> int:
        return len(self._weights)


class HyperbandPruner(BasePruner):
    """Hyperband: ASHA in several brackets that start pruning at different steps."""

    def __init__(
        self,
        sweep_name: str,
        min_steps: int,
        max_steps: int,
        reduction_factor: int,
        forecast_to: int | None = None,
    ) -> None:
        ratio = max(1.0, max_steps / min_steps)
        n_brackets = max(1, math.floor(math.log(ratio, reduction_factor) + 1e-9) + 1)
        self.bracketing = Bracketing(sweep_name, n_brackets, reduction_factor)
        self._asha = [
            AshaPruner(
                min_steps * reduction_factor**b,
                reduction_factor,
                max_steps,
                self.bracketing,
                forecast_to,
            )
            for b in range(n_brackets)
        ]

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        return self._asha[self.bracketing(trial.number)].prune(study, trial)


def make_pruner(
    early: EarlyStopping, sweep_name: str, max_steps: int | None, horizon: int | None
) -> BasePruner:
    """The pruner for the spec's earlyStopping block; max_steps is trainer.maxSteps if known,
    horizon the step forecasts aim at (None without forecasts)."""
    if early.name == "none":
        return NopPruner()
    if early.name == "median":
        return MedianPruner(early.startup_trials, early.min_steps)
    if early.name == "asha":
        return AshaPruner(early.min_steps, early.reduction_factor, max_steps, forecast_to=horizon)
    if early.name == "hyperband":
        top = max_steps or early.min_steps * early.reduction_factor**DEFAULT_HYPERBAND_RUNGS
        return HyperbandPruner(
            sweep_name, early.min_steps, top, early.reduction_factor, forecast_to=horizon
        )
    raise ValueError(f"earlyStopping.name: unknown pruner {early.name!r}")


def forecast_anchors(rungs: Sequence[int], top: int) -> list[int]:
    """Steps whose first value the history keeps so a forecast has points at each rung.

    Three per rung (a quarter, half and three quarters of the way to it) up to the top
    rung: the history's evenly spaced points alone would leave one or two.
    """
    chosen = [r for r in rungs if r <= top]
    return sorted({r * q // 4 for r in chosen for q in (1, 2, 3) if r * q // 4 > 0})
