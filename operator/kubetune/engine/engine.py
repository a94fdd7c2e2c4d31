"""SweepEngine: which trials to start, which to prune, when the sweep is done.

Pure decisions over an Optuna study (ask/tell) and the trial records kept in the sweep's
status. The records are the only memory: an engine built from them makes the decisions the
engine that wrote them would have made next.
"""

import math
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import optuna
from optuna.study import Study, StudyDirection
from optuna.trial import TrialState

from kubetune.conventions import trial_name
from kubetune.engine import gpu_budget, summary
from kubetune.engine.completion import Completion, check
from kubetune.engine.mo_asha import Vector, mo_asha_prunes
from kubetune.engine.pruners import AshaPruner, forecast_anchors, make_pruner
from kubetune.engine.replay import HistoryError, new_study, replay
from kubetune.engine.samplers import make_sampler, startup_trials
from kubetune.engine.space import ParamValue, SearchSpace
from kubetune.engine.summary import IN_FLIGHT, Trial
from kubetune.spec import BestTrial, SweepSpec, TrialCounts, TrialRecord, effective_spec

if TYPE_CHECKING:  # a type only: the engine imports no metrics or HTTP code
    from kubetune.trial_ending import Verdict

# Optuna logs every tell at INFO; the operator reports trials through status and events.
optuna.logging.set_verbosity(optuna.logging.WARNING)

# The pruner's rungs, recorded in the history whatever the step spacing: enough for any run.
_MAX_RUNGS = 12


@dataclass(frozen=True)
class TrialPlan:
    """A trial to launch: a new one, or a requeued one again with the same number and params."""

    number: int
    name: str
    params: dict[str, ParamValue]
    attempt: int = 1  # 2 and up: run again after preemption or eviction


def default_seed(sweep_name: str) -> int:
    """A sweep without algorithm.seed still needs one fixed seed, or a rebuild would differ."""
    return zlib.crc32(sweep_name.encode())


class SweepEngine:
    """The search for one sweep; the module doc states the rebuild rule it keeps."""

    def __init__(
        self, spec: SweepSpec, sweep_name: str, history: Sequence[TrialRecord] = ()
    ) -> None:
        self.spec = effective_spec(spec)
        self.sweep_name = sweep_name
        self._objectives = self.spec.objective_list
        self._space = SearchSpace.from_spec(self.spec)
        self._grid_points = self.spec.grid_points() if self.spec.algorithm.name == "grid" else None
        early = self.spec.early_stopping
        max_steps = self.spec.trainer.max_steps if self.spec.trainer is not None else None
        self._rungs = (
            [early.min_steps * early.reduction_factor**k for k in range(_MAX_RUNGS)]
            if early.name in ("asha", "hyperband")
            else []
        )
        self._gap = summary.intermediate_gap(max_steps, early.min_steps, bool(self._rungs))
        # The spec refuses forecasts without a known last step (spec/sweep.py).
        horizon = self.spec.last_step if early.forecast else None
        if horizon is not None:
            # A forecast needs points before each rung; keep them like the rungs themselves.
            top = AshaPruner(early.min_steps, early.reduction_factor, max_steps).top_resource
            anchors = forecast_anchors(self._rungs, horizon if top is None else top)
            self._rungs = sorted(set(self._rungs) | set(anchors))
        # Several objectives: MO-ASHA over the records (Optuna prunes one value only).
        self._mo_asha = (
            AshaPruner(early.min_steps, early.reduction_factor, max_steps)
            if self.spec.multi_objective and early.name == "asha"
            else None
        )
        self._signs = [1.0 if o.direction == "minimize" else -1.0 for o in self._objectives]
        seed = self.spec.algorithm.seed
        self.seed = default_seed(sweep_name) if seed is None else seed
        self._sampler = make_sampler(
            self.spec.algorithm,
            self._space,
            self.seed,
            self.spec.budget.max_trials,
            len(self._objectives),
        )
        # earlyStopping.trials: startup: trials numbered from here on are the model's, and
        # run to the end.
        self._prunable_below = (
            startup_trials(self.spec.algorithm, self.spec.budget.max_trials)
            if early.trials == "startup"
            else None
        )
        directions = [
            StudyDirection.MINIMIZE if o.direction == "minimize" else StudyDirection.MAXIMIZE
            for o in self._objectives
        ]
        self.study: Study
        self.study, self._storage = new_study(
            sweep_name,
            directions,
            self._sampler,
            make_pruner(early, sweep_name, max_steps, horizon),
        )
        self._study_id = self._storage.get_study_id_from_name(sweep_name)
        self._trials: dict[int, Trial] = {}
        for record in history:
            if record.number in self._trials:
                raise HistoryError(f"history: trial {record.number} appears twice")
            if record.number < 0:
                raise HistoryError(f"history: trial number must be >= 0, got {record.number}")
            trial = Trial.from_record(record)
            self._check_others(trial)
            self._trials[record.number] = trial
        replay(self.study, list(self._trials.values()), self._space, len(self._objectives))

    # ---- decisions -------------------------------------------------------------------

    def start_trials(self) -> list[TrialPlan]:
        """Trials to launch now: requeued ones first, then new suggestions, within budget."""
        if self.spec.suspend or self.finished() is not None:
            return []
        slots = self.spec.budget.parallelism - len(self.running())
        plans: list[TrialPlan] = []
        for trial in self._with_state("Requeued"):
            if slots <= 0 or not self._gpu_room():
                break
            trial.state = "Pending"
            plans.append(self._plan(trial))
            slots -= 1
        while slots > 0 and self._may_ask() and self._gpu_room():
            plans.append(self._plan(self._ask()))
            slots -= 1
        return plans

    def to_prune(self) -> list[int]:
        """Running trials the pruner says to stop now (idempotent until they are pruned)."""
        if self._mo_asha is not None:
            return self._mo_to_prune(self._mo_asha)
        doomed = []
        for trial in self._prunable():
            if not trial.intermediate:
                continue
            frozen = self._storage.get_trial(self._trial_id(trial.number))
            if self.study.pruner.prune(self.study, frozen):
                doomed.append(trial.number)
        return doomed

    def finished(self) -> Completion | None:
        return check(self.spec, list(self._trials.values()), self._grid_points)

    # ---- events ----------------------------------------------------------------------

    def mark_running(self, number: int) -> bool:
        """The trial's process started (Pending or Queued -> Running); False if it was
        neither."""
        trial = self._get(number)
        if trial.state not in ("Pending", "Queued"):
            return False
        trial.state = "Running"
        return True

    def mark_queued(self, number: int, queued: bool) -> bool:
        """Kueue holds the trial back (Pending -> Queued) or admitted it (Queued -> Pending);
        False when nothing changed. A queued trial keeps its parallelism slot."""
        trial = self._get(number)
        if trial.state == ("Queued" if queued else "Pending") or trial.state not in (
            "Pending",
            "Queued",
        ):
            return False
        trial.state = "Queued" if queued else "Pending"
        return True

    def report(self, number: int, step: int, value: float | Sequence[float]) -> bool:
        """An intermediate objective value; True if the history kept it.

        A multi-objective sweep reports one value per objective, in spec order. Non-finite
        values are dropped (the trainer fails such runs itself), and the history keeps a
        bounded subset (summary.keep_point), which is all the pruner ever sees.
        """
        values = [value] if isinstance(value, (int, float)) else list(value)
        if len(values) != len(self._objectives):
            raise ValueError(
                f"trial {number}: expected {len(self._objectives)} intermediate value(s), "
                f"got {len(values)}"
            )
        trial = self._get(number)
        if trial.state not in IN_FLIGHT:
            return False
        trial.state = "Running"
        if not all(math.isfinite(v) for v in values) or step < 0:
            return False
        if not summary.keep_point(trial.intermediate, step, self._gap, self._rungs):
            return False
        rounded = [summary.round_intermediate(float(v)) for v in values]
        trial.intermediate.append((step, rounded[0]))
        if self.spec.multi_objective:
            # Optuna's multi-objective studies hold no intermediate values (its tell would
            # turn the first into a pruned trial's only value); the records are enough.
            trial.others.append(tuple(rounded[1:]))
        else:
            self._storage.set_trial_intermediate_value(self._trial_id(number), step, rounded[0])
        return True

    def complete(
        self,
        number: int,
        values: Sequence[float],
        step: int | None = None,
        *,
        gpu_seconds: float = 0.0,
    ) -> bool:
        """The trial finished with its final objective value(s); False if already finished.

        gpu_seconds, here and in prune, fail and requeue: what the attempt that just ended
        spent (GPUs x running time); the trial's total adds each attempt once.
        """
        trial = self._get(number)
        if trial.state in summary.FINISHED:
            return False
        self._spend(trial, gpu_seconds)
        if len(values) != len(self._objectives):
            raise ValueError(
                f"trial {number}: expected {len(self._objectives)} objective value(s), "
                f"got {len(values)}"
            )
        if not all(math.isfinite(v) for v in values):
            return self.fail(number, f"objective value is not finite: {list(values)}")
        trial.values = [summary.round_value(float(v)) for v in values]
        trial.step = step
        trial.state = "Succeeded"
        self.study.tell(number, trial.values)
        return True

    def prune(self, number: int, *, gpu_seconds: float = 0.0) -> bool:
        """The trial was stopped early; False if already finished."""
        trial = self._get(number)
        if trial.state in summary.FINISHED:
            return False
        self._spend(trial, gpu_seconds)
        trial.state = "Pruned"
        trial.step = trial.intermediate[-1][0] if trial.intermediate else None
        self.study.tell(number, state=TrialState.PRUNED)
        return True

    def fail(self, number: int, reason: str, *, gpu_seconds: float = 0.0) -> bool:
        """The trial failed (counts toward budget.maxFailedTrials); False if already finished."""
        trial = self._get(number)
        if trial.state in summary.FINISHED:
            return False
        self._spend(trial, gpu_seconds)
        trial.state = "Failed"
        trial.reason = summary.short_reason(reason)
        self.study.tell(number, state=TrialState.FAIL)
        return True

    def requeue(
        self, number: int, reason: str, *, disruption: bool = False, gpu_seconds: float = 0.0
    ) -> bool:
        """Run the trial again later with the same params; False if it was not in flight.

        Not a failure. Its intermediate values stay: a rerun's reports count again once
        they pass the last recorded step. A disruption (the cluster took the trial away)
        counts toward budget.maxRequeues; past it the trial fails instead, so a trial that
        keeps being taken away cannot hold the sweep forever.
        """
        trial = self._get(number)
        if trial.state not in IN_FLIGHT:
            return False
        self._spend(trial, gpu_seconds)
        if disruption:
            trial.disruptions += 1
            limit = self.spec.budget.max_requeues
            if trial.disruptions > limit:
                return self.fail(
                    number,
                    f"TooManyRequeues: taken away {trial.disruptions} times "
                    f"(budget.maxRequeues {limit}); last: {reason}",
                )
        trial.state = "Requeued"
        trial.reason = summary.short_reason(reason)
        trial.requeues += 1
        return True

    def conclude(self, number: int, verdict: "Verdict") -> bool:
        """Record an ended trial as judged (trial_ending.judge); False if nothing changed.

        The result's evaluations go in first: a pruner reads them, and a trial that ended
        between two readings would otherwise leave gaps.
        """
        # A multi-objective verdict carries the first objective's history only; the
        # readings taken while the trial ran are its intermediate values.
        if not self.spec.multi_objective:
            for step, value in verdict.intermediate:
                self.report(number, step, value)
        trial = self._get(number)
        if verdict.metrics and trial.state not in summary.FINISHED:
            # At most spec.additionalMetrics entries, finite (judge drops the rest).
            trial.metrics = {
                name: summary.round_value(value)
                for name, value in verdict.metrics.items()
                if name in self.spec.additional_metrics and math.isfinite(value)
            }
        spent = verdict.gpu_seconds
        if verdict.kind == "complete":
            assert verdict.values is not None
            done = self.complete(number, verdict.values, verdict.step, gpu_seconds=spent)
            if done and trial.state == "Succeeded":
                trial.artifacts = verdict.artifacts
            return done
        if verdict.kind == "prune":
            return self.prune(number, gpu_seconds=spent)
        if verdict.kind == "requeue":
            return self.requeue(
                number, verdict.reason or "", disruption=verdict.disruption, gpu_seconds=spent
            )
        return self.fail(number, verdict.reason or "Failed", gpu_seconds=spent)

    def plan(self, number: int) -> TrialPlan:
        """Trial `number` as it runs (or last ran): name, params and attempt."""
        return self._plan(self._get(number))

    def in_flight(self) -> list[TrialPlan]:
        """What each trial holding a slot should be running: name, params and attempt."""
        return [self._plan(trial) for trial in self._in_flight()]

    # ---- what the status shows -------------------------------------------------------

    def counts(self) -> TrialCounts:
        return summary.counts(self._trials.values())

    def best(self) -> BestTrial | None:
        winner = summary.best(self._trials.values(), self._objectives)
        return None if winner is None else summary.best_trial(self.sweep_name, winner)

    def pareto_front(self) -> list[BestTrial]:
        """Non-dominated succeeded trials (one objective: the best trial alone)."""
        front = summary.pareto(self._trials.values(), self._objectives)
        return [summary.best_trial(self.sweep_name, t) for t in front]

    def history(self) -> list[TrialRecord]:
        return [self._trials[n].record() for n in sorted(self._trials)]

    def gpu_hours(self) -> float:
        """GPU-hours the trials' ended attempts spent."""
        return gpu_budget.hours(gpu_budget.spent_seconds(self._trials.values()))

    def running(self) -> list[int]:
        """Trials launched and not finished: they hold a parallelism slot."""
        return sorted(n for n, t in self._trials.items() if t.state in IN_FLIGHT)

    def trial(self, number: int) -> TrialRecord:
        return self._get(number).record()

    # ---- internals -------------------------------------------------------------------

    def _mo_to_prune(self, asha: AshaPruner) -> list[int]:
        series: dict[int, list[tuple[int, Vector]]] = {
            number: [
                (step, (value, *rest))
                for (step, value), rest in zip(trial.intermediate, trial.others, strict=True)
            ]
            for number, trial in self._trials.items()
            if trial.intermediate
        }
        return [
            trial.number
            for trial in self._prunable()
            if trial.intermediate and mo_asha_prunes(asha, trial.number, series, self._signs)
        ]

    def _check_others(self, trial: Trial) -> None:
        """A record's io matches its iv: one entry per iv entry, one value per extra objective."""
        extra = len(self._objectives) - 1
        if not trial.others and (extra == 0 or not trial.intermediate):
            return
        if extra == 0:
            raise HistoryError(f"history: trial {trial.number} has io in a one-objective sweep")
        if len(trial.others) != len(trial.intermediate) or any(
            len(entry) != extra for entry in trial.others
        ):
            raise HistoryError(
                f"history: trial {trial.number}: io needs one entry of {extra} value(s) per "
                "entry of iv"
            )

    def _may_ask(self) -> bool:
        total = len(self._trials)
        if self._grid_points is not None and total >= self._grid_points:
            return False
        return total < self.spec.budget.max_trials

    def _gpu_room(self) -> bool:
        return gpu_budget.may_start(self.spec.budget.max_gpu_hours, list(self._trials.values()))

    @staticmethod
    def _spend(trial: Trial, gpu_seconds: float) -> None:
        if math.isfinite(gpu_seconds) and gpu_seconds > 0:
            trial.gpu_seconds = round(trial.gpu_seconds + gpu_seconds)

    def _ask(self) -> Trial:
        with warnings.catch_warnings():
            # Samplers warn about experimental features and independent sampling; the
            # choice of algorithm is the user's, so these say nothing actionable.
            warnings.simplefilter("ignore")
            asked = self.study.ask(fixed_distributions=dict(self._space.distributions))
        number = self._next_number()
        if asked.number != number:  # replay keeps Optuna's numbering equal to ours
            raise RuntimeError(f"study numbered trial {asked.number}, expected {number}")
        trial = Trial(number=number, state="Pending", params=self._space.to_user(asked.params))
        self._trials[number] = trial
        return trial

    def _next_number(self) -> int:
        return max(self._trials, default=-1) + 1

    def _plan(self, trial: Trial) -> TrialPlan:
        return TrialPlan(
            number=trial.number,
            name=trial_name(self.sweep_name, trial.number),
            params=dict(trial.params),
            attempt=trial.requeues + 1,
        )

    def _in_flight(self) -> list[Trial]:
        """Pending and running trials, by number: the ones holding a parallelism slot."""
        return [self._trials[n] for n in self.running()]

    def _prunable(self) -> list[Trial]:
        """The in-flight trials the pruner may stop (earlyStopping.trials)."""
        below = self._prunable_below
        return [t for t in self._in_flight() if below is None or t.number < below]

    def _with_state(self, state: str) -> list[Trial]:
        return [self._trials[n] for n in sorted(self._trials) if self._trials[n].state == state]

    def _get(self, number: int) -> Trial:
        try:
            return self._trials[number]
        except KeyError:
            raise ValueError(f"sweep {self.sweep_name!r} has no trial {number}") from None

    def _trial_id(self, number: int) -> int:
        return self._storage.get_trial_id_from_study_id_trial_number(self._study_id, number)
