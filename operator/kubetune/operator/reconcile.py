"""One sweep's reconcile decisions: observed pods and metrics in, engine calls and effects out.

No I/O here. The daemon (handlers.py) gathers pods and metrics, calls `decide`, then
writes the status first and acts second (creates and deletes pods, posts events): the
status is the write-ahead log, so an operator killed between the two redoes the acts
from the status after a restart and never runs a trial twice or loses its result.
Pods are converged level-based: every pass compares the trials the engine has in flight
with the pods that exist. How an ended trial is recorded is trial_ending.judge's call,
the same one `kubetune run` makes.

SweepReconciler orchestrates a pass; the rules it applies live in pure modules:
acceptance (which spec runs), start_problems (why trials cannot start, TrialsStarted),
model_cache (the prefetch gate), tidy_step (the ended sweep's tidy pod), sweep_events
(Event texts) and kubetune.trial_readings (what a reading gives the engine).
"""

import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from kubetune.builders.workload import build_trial
from kubetune.conventions import prefetch_name
from kubetune.engine import Completion, HistoryError, SweepEngine, TrialPlan
from kubetune.metrics import PrometheusUrlPolicy, TrialTarget, short_name
from kubetune.operator import conditions as cond
from kubetune.operator.acceptance import Accepted, checked_spec, study_edit_refused
from kubetune.operator.effects import Effects, Event, EventType, MetricsReading
from kubetune.operator.model_cache import MODEL_CACHED, PrefetchStep, plan_prefetch
from kubetune.operator.pod_convergence import converge, is_current
from kubetune.operator.pod_ledger import PodLedger
from kubetune.operator.pod_state import QUEUE_PREEMPTED, PodView
from kubetune.operator.readings import TrialReadings
from kubetune.operator.start_problems import (
    QUEUED_REASON,
    START_GRACE_SECONDS,
    Refusal,
    Stuck,
    next_refusal,
    trials_started,
    waiting_problem,
)
from kubetune.operator.sweep_events import finished_event, new_best_event, trial_event
from kubetune.operator.sweep_status import compose_status, status_from
from kubetune.operator.tidy_step import tidy_step
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import SpecError, SweepSpec, SweepStatus, auto_pruning
from kubetune.spec.identity import legacy_search_space_digest, study_digest
from kubetune.trial_ending import (
    REASON_METRICS_LOST,
    REASON_NO_OBJECTIVE,
    REASON_SUSPENDED,
    REASON_TIMEOUT,
    judge,
)
from kubetune.trial_result import resumed_note


class SweepReconciler:
    """The in-memory state of one sweep across passes: accepted spec, engine, status."""

    def __init__(
        self,
        namespace: str,
        name: str,
        uid: str | None,
        *,
        default_image: str | None = None,
        policy: PodPolicy | None = None,
        prometheus_policy: PrometheusUrlPolicy | None = None,
        start_grace: float = START_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.default_image = default_image
        self.policy = policy or PodPolicy()
        # Without one, no sweep may name its own Prometheus URL.
        self.prometheus_policy = prometheus_policy or PrometheusUrlPolicy()
        self.start_grace = start_grace
        self.clock = clock
        self.wall_clock = wall_clock
        self.accepted: Accepted | None = None
        self.generation: int | None = None  # generation last looked at
        self.digest: str | None = None  # study digest the sweep's trials ran under
        self.hold: str | None = None  # why no new trials start (invalid or refused edit)
        self.invalid = False
        self.status = SweepStatus()
        self.pods = PodLedger()
        self.refusals: dict[str, Refusal] = {}
        self.readings = TrialReadings()
        self.best_number: int | None = None
        self.announced_finish = False
        self.metrics_down = False
        self._events: list[Event] = []
        self.suggestion_seconds: list[float] = []

    @property
    def spec(self) -> SweepSpec | None:
        return self.accepted.spec if self.accepted is not None else None

    @property
    def engine(self) -> SweepEngine | None:
        return self.accepted.engine if self.accepted is not None else None

    # ---- spec ------------------------------------------------------------------------

    def accept(self, body: Mapping[str, Any]) -> bool:
        """Look at the sweep's current spec; True when the metrics source must be rebuilt."""
        meta = body.get("metadata") or {}
        generation = meta.get("generation")
        settled = self.accepted is not None or self.hold is not None
        if settled and generation == self.generation:
            return False
        if self.generation is None:  # first look, e.g. after a restart
            self.status = status_from(body)
            self.digest = self.status.search_space_hash
            self.announced_finish = self.status.phase in ("Succeeded", "Failed")
        self.generation = generation
        try:
            sweep, spec = checked_spec(
                body,
                f"{self.namespace}/{self.name}",
                started_digest=self.digest,
                default_image=self.default_image,
                policy=self.policy,
                prometheus_policy=self.prometheus_policy,
            )
        except SpecError as error:
            self._refuse("InvalidSpec", "; ".join(error.problems), invalid=True)
            return False
        digest = study_digest(spec)
        if self.digest not in (None, digest, legacy_search_space_digest(spec)):
            message = study_edit_refused(self.spec, spec)
            self._refuse("SearchSpaceChanged", message, invalid=False)
            return False
        try:
            history = self.engine.history() if self.engine is not None else self.status.records()
            engine = SweepEngine(spec, self.name, history=history)
        except (HistoryError, ValueError) as error:
            self._refuse("InvalidHistory", f"status.history: {error}", invalid=True)
            return False
        rebuilt_source = self.spec is None or self.spec.metrics != spec.metrics
        self.accepted = Accepted(sweep, spec, engine, digest)
        self.digest = digest
        self.hold = None
        self.invalid = False
        if self.best_number is None:
            best = engine.best()
            self.best_number = best.number if best is not None else None
        self._set(cond.SPEC_ACCEPTED, (True, "Accepted", auto_pruning.explain(sweep.spec)))
        if self.status.phase in ("Succeeded", "Failed") and engine.finished() is None:
            self.announced_finish = False  # e.g. maxTrials raised after the end: carry on
        return rebuilt_source

    def _refuse(self, reason: str, message: str, *, invalid: bool) -> None:
        """Hold the sweep: no new trial starts, and the trials in flight keep running."""
        already = self.hold == message
        self.hold = message
        self.invalid = invalid
        self._set(cond.SPEC_ACCEPTED, (False, reason, message))
        if not already:
            self._events.append(Event("Warning", reason, message))

    # ---- metrics -----------------------------------------------------------------------

    def metric_targets(self, pods: Mapping[str, PodView]) -> list[TrialTarget]:
        """Trials to read: running ones, and ended ones still waiting for a final value."""
        if self.accepted is None:
            return []
        spec = self.accepted.spec
        port = spec.metrics.scrape.port
        wanted = [short_name(o.metric) for o in spec.objective_list]
        targets = []
        for plan in self.accepted.engine.in_flight():
            pod = pods.get(plan.name)
            if pod is None or pod.kind not in ("running", "ended"):
                continue
            if pod.result is not None and all(m in pod.result.metrics for m in wanted):
                continue  # its termination message has the final values already
            targets.append(
                TrialTarget(
                    name=plan.name,
                    address=pod.ip,
                    port=port,
                    uid=pod.uid,
                    pod=pod.pod_name,
                    container=pod.container,
                    ended=pod.kind == "ended",
                )
            )
        return targets

    # ---- decide ------------------------------------------------------------------------

    def decide(self, pods: Mapping[str, PodView], metrics: MetricsReading) -> Effects:
        now = self.clock()
        accepted = self.accepted
        if accepted is None:
            # No engine: a spec that was never valid, or one refused before this process
            # accepted it (after a restart). Trials in flight keep running untouched, as
            # they do under a live operator, until the spec is fixed or the edit reverted.
            effects = Effects(status=self._compose_status(None))
            effects.events = self._take_events()
            return effects
        engine, spec = accepted.engine, accepted.spec
        self._note_metrics(metrics)
        self.readings.take(metrics, (plan.name for plan in engine.in_flight()))
        prefetch_pod = pods.get(prefetch_name(self.name))
        if prefetch_pod is not None and not prefetch_pod.prefetch:
            prefetch_pod = None  # a trial could never have this name; be safe anyway
        pods = {name: pod for name, pod in pods.items() if not pod.prefetch}
        stuck = self._observe(accepted, pods, metrics, now)
        completion = engine.finished()
        if completion is None and metrics.problem is None:
            for number in engine.to_prune():
                if engine.prune(number):
                    self._event("Normal", "TrialPruned", engine, number, "stopped early")
        completion = engine.finished()
        step: PrefetchStep | None = None
        manifest: dict[str, Any] | None = None
        if completion is not None:
            for plan in engine.in_flight():
                if engine.prune(plan.number):
                    self._event("Normal", "TrialStopped", engine, plan.number, "sweep finished")
        elif spec.suspend:
            for plan in engine.in_flight():
                engine.requeue(plan.number, REASON_SUSPENDED)
        elif self.hold is None:
            step, manifest = self._prefetch_step(accepted, prefetch_pod)
            if step.ready:
                started = time.perf_counter()
                engine.start_trials()
                self.suggestion_seconds.append(time.perf_counter() - started)
        self._note_stuck(stuck)
        tidy = self._tidy_step(accepted, pods, completion)
        effects = Effects(status=self._compose_status(completion, step.failure if step else None))
        effects.tidy = tidy
        if step is not None:
            self._prefetch_effects(prefetch_pod, step, manifest, effects, now)
        self._converge(accepted, pods, effects, now)
        self._announce(engine, completion)
        effects.events = self._take_events()
        return effects

    def _observe(
        self,
        accepted: Accepted,
        pods: Mapping[str, PodView],
        metrics: MetricsReading,
        now: float,
    ) -> Stuck:
        """Record what the pods say; returns the trials that cannot start, with why."""
        engine, spec = accepted.engine, accepted.spec
        timeout = spec.budget.trial_timeout_seconds()
        wall = self.wall_clock()
        stuck: Stuck = []
        for plan in engine.in_flight():
            pod = pods.get(plan.name)
            if pod is None or not is_current(pod, plan.attempt, self.uid):
                if pod is None:
                    self._missing(engine, plan, now, stuck)
                continue
            if pod.kind == "ended":
                self._conclude(accepted, plan, pod, metrics)
                continue
            if pod.kind == "terminating":
                continue
            if pod.kind == "queued":
                self._queued(engine, plan, stuck)
                continue
            # Admitted (or never queued): no longer waiting for Kueue.
            engine.mark_queued(plan.number, False)
            if pod.kind == "running":
                engine.mark_running(plan.number)
            if pod.waiting is not None:
                self._waiting(engine, plan, pod, wall, stuck)
                continue
            if pod.unschedulable is not None:
                stuck.append((plan.name, pod.unschedulable))
            if pod.kind != "running":
                continue
            if timeout is not None and _age(pod.started_at, wall) > timeout:
                reason = (
                    f"{REASON_TIMEOUT}: ran past budget.trialTimeout ({spec.budget.trial_timeout})"
                )
                if engine.fail(plan.number, reason, gpu_seconds=pod.gpu_seconds(wall)):
                    self._event("Warning", "TrialFailed", engine, plan.number, reason)
                continue
            values = metrics.values.get(plan.name)
            if values is not None:
                objectives = [o.metric for o in spec.objective_list]
                point = self.readings.fold(
                    plan.name, plan.attempt, values, objectives, spec.multi_objective
                )
                if point is not None:
                    engine.report(plan.number, *point)
        return stuck

    def _missing(self, engine: SweepEngine, plan: TrialPlan, now: float, stuck: Stuck) -> None:
        """A trial in flight has no pod: refused, not created yet, or gone."""
        refusal = self.refusals.get(plan.name)
        if refusal is not None and refusal.attempt == plan.attempt:
            if refusal.gives_up:
                if engine.fail(plan.number, refusal.problem):
                    self._event("Warning", "TrialFailed", engine, plan.number, refusal.problem)
                self.refusals.pop(plan.name, None)
            else:
                stuck.append((plan.name, refusal.problem))
            return
        running = engine.trial(plan.number).state == "Running"
        if (
            running
            and not self.pods.recently_created(plan.name, now)
            and engine.requeue(
                plan.number, "PodDeleted: the trial pod disappeared", disruption=True
            )
        ):
            self._trial_event(engine, plan.number)

    def _queued(self, engine: SweepEngine, plan: TrialPlan, stuck: Stuck) -> None:
        """Kueue has not admitted the trial: it waits, holding its slot but no trialTimeout
        clock (that starts with its pod). A running trial whose Job Kueue suspended again
        (preempted for a higher-priority workload) runs again from the start."""
        if engine.trial(plan.number).state == "Running":
            if engine.requeue(plan.number, QUEUE_PREEMPTED, disruption=True):
                self._trial_event(engine, plan.number)
            return
        engine.mark_queued(plan.number, True)
        stuck.append((plan.name, QUEUED_REASON))

    def _waiting(
        self,
        engine: SweepEngine,
        plan: TrialPlan,
        pod: PodView,
        wall: float,
        stuck: Stuck,
    ) -> None:
        assert pod.waiting is not None
        reason, message = pod.waiting
        waited = _age(pod.created_at, wall)
        fails, why = waiting_problem(reason, message, waited, self.start_grace)
        if not fails:
            stuck.append((plan.name, why))
        elif engine.fail(plan.number, why):
            self._event("Warning", "TrialFailed", engine, plan.number, why)

    def _conclude(
        self, accepted: Accepted, plan: TrialPlan, pod: PodView, metrics: MetricsReading
    ) -> None:
        assert pod.ending is not None
        engine, spec = accepted.engine, accepted.spec
        objectives = [o.metric for o in spec.objective_list]
        read = self.readings.at_end(plan.name, plan.attempt, metrics, objectives)
        ending = dataclasses.replace(
            pod.ending,
            last=read.last,
            seen=read.seen,
            last_is_final=read.last_is_final,
            metrics_gap=read.blind,
            timeout=spec.budget.trial_timeout,
            gpu_seconds=pod.gpu_seconds(self.wall_clock()),
            earlier_gpu_seconds=engine.trial(plan.number).gpu_seconds or 0,
        )
        verdict = judge(ending, spec.objective_list, spec.additional_metrics)
        lacking = (verdict.reason or "").startswith((REASON_NO_OBJECTIVE, REASON_METRICS_LOST))
        if metrics.problem is not None and lacking:
            return  # the final value may still be read: wait rather than misjudge the trial
        if not engine.conclude(plan.number, verdict):
            return
        self.readings.forget(plan.name)
        self._trial_event(engine, plan.number, resumed_note(ending.result))

    def _trial_event(self, engine: SweepEngine, number: int, note: str = "") -> None:
        name = engine.plan(number).name
        event = trial_event(name, engine.trial(number), engine.spec.objective_list, note)
        if event is not None:
            self._events.append(event)

    def _event(
        self, kind: EventType, reason: str, engine: SweepEngine, number: int, text: str
    ) -> None:
        self._events.append(Event(kind, reason, f"{engine.plan(number).name}: {text}"))

    # ---- prefetch ----------------------------------------------------------------------

    def _prefetch_step(
        self, accepted: Accepted, pod: PodView | None
    ) -> tuple[PrefetchStep, dict[str, Any] | None]:
        """model_cache's step for this pass (its condition and Event recorded), and the
        prefetch pod's manifest when the step creates one."""
        step, manifest = plan_prefetch(
            accepted.sweep,
            accepted.spec,
            cond.get_condition(self.status.conditions, MODEL_CACHED),
            pod,
            self.generation or 0,
            default_image=self.default_image,
            policy=self.policy,
        )
        if step.condition is not None:
            self._set(MODEL_CACHED, step.condition)
        if step.event is not None:
            self._events.append(step.event)
        return step, manifest

    def _prefetch_effects(
        self,
        pod: PodView | None,
        step: PrefetchStep,
        manifest: dict[str, Any] | None,
        effects: Effects,
        now: float,
    ) -> None:
        name = prefetch_name(self.name)
        deletable = pod is not None and pod.kind != "terminating"
        if step.delete is not None and deletable and self.pods.may_delete(name, now):
            effects.delete.append(step.delete)
        if manifest is not None and not self.pods.recently_created(name, now, self.generation or 0):
            effects.prefetch = manifest

    # ---- tidy --------------------------------------------------------------------------

    def _tidy_step(
        self, accepted: Accepted, pods: Mapping[str, PodView], completion: Completion | None
    ) -> dict[str, Any] | None:
        """tidy_step's tidy pod for this pass, its CheckpointsTidied condition recorded."""
        step = tidy_step(
            self.name,
            accepted.sweep,
            accepted.spec,
            accepted.engine,
            pods,
            completion,
            cond.get_condition(self.status.conditions, cond.CHECKPOINTS_TIDIED),
            default_image=self.default_image,
            policy=self.policy,
        )
        if step is None:
            return None
        self._set(cond.CHECKPOINTS_TIDIED, step.condition)
        return step.manifest

    # ---- pods --------------------------------------------------------------------------

    def _converge(
        self, accepted: Accepted, pods: Mapping[str, PodView], effects: Effects, now: float
    ) -> None:
        def build(plan: TrialPlan) -> dict[str, Any]:
            return build_trial(
                accepted.sweep,
                accepted.spec,
                plan.number,
                plan.params,
                attempt=plan.attempt,
                default_image=self.default_image,
                policy=self.policy,
            )

        create, delete = converge(
            accepted.engine.in_flight(), pods, self.pods, self.uid, now, build
        )
        effects.create.extend(create)
        effects.delete.extend(delete)

    def note_created(self, name: str, attempt: int) -> None:
        self.pods.note_created(name, attempt, self.clock())
        self.refusals.pop(name, None)

    def create_refused(self, name: str, attempt: int, status: int, message: str) -> None:
        """The API server refused a trial's pod: say why, and give up on a lasting refusal."""
        previous = self.refusals.get(name)
        refusal = next_refusal(previous, attempt, status, message)
        self.refusals[name] = refusal
        if previous is None or previous.message != refusal.message:
            self._events.append(
                Event("Warning", "CreateRefused", f"{name}: HTTP {status}: {refusal.message}")
            )

    def delete_failed(self, name: str) -> None:
        self.pods.delete_failed(name)

    # ---- status ------------------------------------------------------------------------

    def _note_stuck(self, stuck: Stuck) -> None:
        queue = self.spec.queue_name if self.spec is not None else None
        reported = cond.get_condition(self.status.conditions, cond.TRIALS_STARTED) is not None
        update = trials_started(stuck, queue, reported)
        if update is not None:
            self._set(cond.TRIALS_STARTED, update)

    def _note_metrics(self, metrics: MetricsReading) -> None:
        if not metrics.queried:
            return
        if metrics.problem is not None:
            if not self.metrics_down:
                self._events.append(Event("Warning", metrics.reason, metrics.problem))
            self.metrics_down = True
            message = f"{metrics.problem} (retrying; trials keep their state)"
            self._set(cond.METRICS_AVAILABLE, (False, metrics.reason, message))
        else:
            self.metrics_down = False
            self._set(cond.METRICS_AVAILABLE, (True, "MetricsRead", ""))

    def _set(self, type_: str, update: tuple[bool, str, str]) -> None:
        """Set the condition `type_` to (status, reason, message) for this generation."""
        status, reason, message = update
        self.status.conditions = cond.set_condition(
            self.status.conditions, type_, status, reason, message, generation=self.generation
        )

    def _compose_status(
        self, completion: Completion | None, failure: str | None = None
    ) -> dict[str, Any]:
        return compose_status(
            self.status,
            self.engine,
            self.spec,
            completion,
            failure=failure,
            invalid=self.invalid,
            hold=self.hold,
            generation=self.generation,
            accepted_hash=self.digest,
        )

    def _announce(self, engine: SweepEngine, completion: Completion | None) -> None:
        best = engine.best()
        if best is not None and best.number != self.best_number:
            self.best_number = best.number
            self._events.append(new_best_event(best))
        if completion is not None and not self.announced_finish:
            self.announced_finish = True
            self._events.append(finished_event(completion))

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def take_suggestion_times(self) -> list[float]:
        times, self.suggestion_seconds = self.suggestion_seconds, []
        return times


def _age(started_at: str | None, wall: float) -> float:
    if not started_at:
        return 0.0
    try:
        started = datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
    return max(0.0, wall - started)
