"""One sweep's reconcile decisions: observed pods and metrics in, engine calls and effects out.

No I/O here. The daemon (handlers.py) gathers pods and metrics, calls `decide`, then
writes the status first and acts second (creates and deletes pods, posts events): the
status is the write-ahead log, so an operator killed between the two redoes the acts
from the status after a restart and never runs a trial twice or loses its result.
Pods are converged level-based: every pass compares the trials the engine has in flight
with the pods that exist. How an ended trial is recorded is trial_ending.judge's call,
the same one `kubetune run` makes.
"""

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubetune.builders.errors import BuildError
from kubetune.builders.prefetch import build_prefetch_pod
from kubetune.builders.workload import build_trial
from kubetune.conventions import prefetch_name
from kubetune.engine import Completion, HistoryError, SweepEngine, TrialPlan
from kubetune.metrics import PrometheusUrlPolicy, TrialReading, TrialTarget, short_name
from kubetune.operator import conditions as cond
from kubetune.operator.effects import Effects, Event, EventType, MetricsReading, PodToCreate
from kubetune.operator.model_cache import (
    MODEL_CACHED,
    PrefetchStep,
    prefetch_refused,
    prefetch_step,
)
from kubetune.operator.pod_ledger import PodLedger
from kubetune.operator.pod_state import PERMANENT_WAITING, PodView
from kubetune.operator.sweep_status import compose_status, status_from
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import (
    HyperparameterSweep,
    SpecError,
    SweepSpec,
    SweepStatus,
    effective_spec,
    parse_sweep,
)
from kubetune.spec.checks import semantic_problems
from kubetune.spec.hub import cluster_prefetch
from kubetune.spec.identity import (
    as_started,
    legacy_search_space_digest,
    study_changes,
    study_digest,
)
from kubetune.spec.parameters import sample_point
from kubetune.text import excerpt
from kubetune.trial_ending import (
    REASON_METRICS_LOST,
    REASON_NO_OBJECTIVE,
    REASON_SUSPENDED,
    REASON_TIMEOUT,
    judge,
    note_extremes,
)
from kubetune.trial_result import resumed_note

# An image pull or container config error may clear up (a registry hiccup, a Secret
# created a few seconds late); the trial fails only if it lasts this long.
START_GRACE_SECONDS = 300.0
# A create the API server refuses for good (4xx) is tried this many times, then the trial fails.
CREATE_ATTEMPTS = 3
# Trials named in the TrialsStarted condition's message, at most.
STUCK_SHOWN = 3
# The TrialsStarted reason while Kueue holds trials back (and nothing worse is wrong).
QUEUED_REASON = "Queued"


@dataclass(frozen=True)
class Accepted:
    """The spec this sweep runs under, and the engine built from it."""

    sweep: HyperparameterSweep
    spec: SweepSpec  # effective spec
    engine: SweepEngine
    digest: str  # spec.identity.study_digest of spec


@dataclass(frozen=True)
class Refusal:
    """The API server refused to create a trial's pod."""

    attempt: int
    count: int
    status: int
    message: str

    @property
    def permanent(self) -> bool:
        # 409 and 429 pass; a quota that is full now frees up as other pods end.
        quota = "exceeded quota" in self.message
        return 400 <= self.status < 500 and self.status not in (409, 429) and not quota


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
        self.last_values: dict[str, TrialReading] = {}
        # Least and greatest evaluation of each objective read per (trial, attempt): what
        # the min and max strategies choose among besides the result (trial_ending rules).
        self.extremes: dict[tuple[str, int], dict[str, list[tuple[int, float]]]] = {}
        # Trials that ran while the metrics source was down: their readings have gaps.
        self.blind: set[str] = set()
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
            sweep = parse_sweep(_plain(body), f"{self.namespace}/{self.name}")
            problems = semantic_problems(sweep)
            if problems:
                raise SpecError(f"{self.namespace}/{self.name}", problems)
            spec = as_started(sweep.spec, effective_spec(sweep.spec), self.digest)
            url = spec.metrics.prometheus.url if spec.metrics.prometheus else None
            refused = self.prometheus_policy.problem(url)
            if refused is not None:
                raise SpecError(f"{self.namespace}/{self.name}", [refused])
            # Building one pod now finds a template, image or policy problem before any
            # trial is recorded.
            build_trial(
                sweep,
                spec,
                0,
                sample_point(spec.parameters),
                default_image=self.default_image,
                policy=self.policy,
            )
        except SpecError as error:
            self._refuse("InvalidSpec", "; ".join(error.problems), invalid=True)
            return False
        except BuildError as error:
            self._refuse("InvalidSpec", str(error), invalid=True)
            return False
        digest = study_digest(spec)
        if self.digest not in (None, digest, legacy_search_space_digest(spec)):
            changed = study_changes(self.accepted.spec, spec) if self.accepted else []
            fields = " / ".join(changed) or "spec.parameters / spec.objective / spec.algorithm"
            self._refuse(
                "SearchSpaceChanged",
                f"{fields} cannot change once a sweep has started; "
                "revert the edit or create a new sweep",
                invalid=False,
            )
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
        self.status.conditions = cond.set_condition(
            self.status.conditions,
            cond.SPEC_ACCEPTED,
            True,
            "Accepted",
            "",
            generation=generation,
        )
        if self.status.phase in ("Succeeded", "Failed") and engine.finished() is None:
            self.announced_finish = False  # e.g. maxTrials raised after the end: carry on
        return rebuilt_source

    def _refuse(self, reason: str, message: str, *, invalid: bool) -> None:
        """Hold the sweep: no new trial starts, and the trials in flight keep running."""
        already = self.hold == message
        self.hold = message
        self.invalid = invalid
        self.status.conditions = cond.set_condition(
            self.status.conditions,
            cond.SPEC_ACCEPTED,
            False,
            reason,
            message,
            generation=self.generation,
        )
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
        for name, values in metrics.values.items():
            self.last_values[name] = values
        if metrics.problem is not None:
            self.blind.update(plan.name for plan in engine.in_flight())
        prefetch_pod = pods.get(prefetch_name(self.name))
        if prefetch_pod is not None and not prefetch_pod.prefetch:
            prefetch_pod = None  # a trial could never have this name; be safe anyway
        pods = {name: pod for name, pod in pods.items() if not pod.prefetch}
        stuck = self._observe(accepted, pods, metrics, now)
        completion = engine.finished()
        if completion is None and metrics.problem is None and not spec.multi_objective:
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
        effects = Effects(status=self._compose_status(completion, step.failure if step else None))
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
    ) -> list[tuple[str, str]]:
        """Record what the pods say; returns the trials that cannot start, with why."""
        engine, spec = accepted.engine, accepted.spec
        timeout = spec.budget.trial_timeout_seconds()
        wall = self.wall_clock()
        stuck: list[tuple[str, str]] = []
        for plan in engine.in_flight():
            pod = pods.get(plan.name)
            if pod is None or not self._current(pod, plan.attempt):
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
                kept = self.extremes.setdefault((plan.name, plan.attempt), {})
                note_extremes(kept, values, [o.metric for o in spec.objective_list])
            if values is not None and not spec.multi_objective:
                # Same rule as the local runner: a gauge at step 0 is no evaluation yet.
                evaluation = values.evaluation(spec.objective_list[0].metric)
                if evaluation is not None:
                    engine.report(plan.number, *evaluation)
        return stuck

    def _missing(
        self, engine: SweepEngine, plan: TrialPlan, now: float, stuck: list[tuple[str, str]]
    ) -> None:
        """A trial in flight has no pod: refused, not created yet, or gone."""
        refusal = self.refusals.get(plan.name)
        if refusal is not None and refusal.attempt == plan.attempt:
            if refusal.permanent and refusal.count >= CREATE_ATTEMPTS:
                reason = f"CreateRefused: HTTP {refusal.status}: {refusal.message}"
                if engine.fail(plan.number, reason):
                    self._event("Warning", "TrialFailed", engine, plan.number, reason)
                self.refusals.pop(plan.name, None)
            else:
                stuck.append(
                    (plan.name, f"CreateRefused: HTTP {refusal.status}: {refusal.message}")
                )
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

    def _queued(self, engine: SweepEngine, plan: TrialPlan, stuck: list[tuple[str, str]]) -> None:
        """Kueue has not admitted the trial: it waits, holding its slot but no trialTimeout
        clock (that starts with its pod). A running trial whose Job Kueue suspended again
        (preempted for a higher-priority workload) runs again from the start."""
        if engine.trial(plan.number).state == "Running":
            reason = "Preempted: Kueue suspended the trial's Job"
            if engine.requeue(plan.number, reason, disruption=True):
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
        stuck: list[tuple[str, str]],
    ) -> None:
        assert pod.waiting is not None
        reason, message = pod.waiting
        text = f"{reason}: {excerpt(message)}" if message else reason
        waited = _age(pod.created_at, wall)
        if reason in PERMANENT_WAITING or waited > self.start_grace:
            why = f"StartFailed: {text}"
            if reason not in PERMANENT_WAITING:
                why = f"StartFailed: {reason} for {waited:.0f}s: {excerpt(message)}"
            if engine.fail(plan.number, why):
                self._event("Warning", "TrialFailed", engine, plan.number, why)
            return
        stuck.append((plan.name, text))

    def _conclude(
        self, accepted: Accepted, plan: TrialPlan, pod: PodView, metrics: MetricsReading
    ) -> None:
        assert pod.ending is not None
        engine, spec = accepted.engine, accepted.spec
        name = plan.name
        # While the source is down an older reading may not be the final one: wait for it.
        last = None if metrics.problem is not None else metrics.values.get(name)
        last = last or (None if metrics.problem is not None else self.last_values.get(name))
        blind = name in self.blind
        seen = self.extremes.get((name, plan.attempt), {})
        if last is not None:
            seen = {metric: list(points) for metric, points in seen.items()}
            note_extremes(seen, last, [o.metric for o in spec.objective_list])
        ending = dataclasses.replace(
            pod.ending,
            last=last,
            seen=seen,
            # Read before an outage: maybe not the trial's final value.
            last_is_final=not (blind and last is not None and not last.done),
            metrics_gap=blind,
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
        self.last_values.pop(name, None)
        self.blind.discard(name)
        for key in [key for key in self.extremes if key[0] == name]:
            del self.extremes[key]
        self._trial_event(engine, plan.number, resumed_note(ending.result))

    def _trial_event(self, engine: SweepEngine, number: int, note: str = "") -> None:
        """The Event for a trial that just ended or was requeued, by what it became."""
        record = engine.trial(number)
        if record.state == "Succeeded" and record.values is not None:
            pairs = zip(engine.spec.objective_list, record.values, strict=True)
            text = ", ".join(f"{o.metric}={v:g}" for o, v in pairs)
            self._event("Normal", "TrialSucceeded", engine, number, text + note)
        elif record.state == "Requeued":
            self._event("Normal", "TrialRequeued", engine, number, f"{record.reason}; rerunning")
        elif record.state == "Failed":
            self._event("Warning", "TrialFailed", engine, number, record.reason or "")

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
        repos = cluster_prefetch(accepted.spec.trainer)
        generation = self.generation or 0
        step = prefetch_step(
            repos, cond.get_condition(self.status.conditions, MODEL_CACHED), pod, generation
        )
        manifest = None
        if step.create:
            try:
                manifest = build_prefetch_pod(
                    accepted.sweep,
                    accepted.spec,
                    generation,
                    default_image=self.default_image,
                    policy=self.policy,
                )
            except BuildError as error:
                step = prefetch_refused(repos, str(error))
        if step.condition is not None:
            status, reason, message = step.condition
            self.status.conditions = cond.set_condition(
                self.status.conditions,
                MODEL_CACHED,
                status,
                reason,
                message,
                generation=self.generation,
            )
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

    # ---- pods --------------------------------------------------------------------------

    def _converge(
        self, accepted: Accepted, pods: Mapping[str, PodView], effects: Effects, now: float
    ) -> None:
        wanted: set[str] = set()
        for plan in accepted.engine.in_flight():
            wanted.add(plan.name)
            pod = pods.get(plan.name)
            if pod is not None and self._current(pod, plan.attempt):
                self.pods.seen(plan.name)
                continue
            if pod is not None:
                # A leftover of an earlier attempt (or of another sweep of this name).
                if pod.kind != "terminating" and self.pods.may_delete(plan.name, now):
                    effects.delete.append((plan.name, pod.uid))
                continue
            if self.pods.recently_created(plan.name, now, plan.attempt):
                continue
            manifest = build_trial(
                accepted.sweep,
                accepted.spec,
                plan.number,
                plan.params,
                attempt=plan.attempt,
                default_image=self.default_image,
                policy=self.policy,
            )
            effects.create.append(
                PodToCreate(plan.number, plan.name, plan.attempt, dict(plan.params), manifest)
            )
        effects.delete.extend(self._stray_pods(pods, wanted, now))

    def _stray_pods(
        self, pods: Mapping[str, PodView], wanted: set[str], now: float
    ) -> list[tuple[str, str]]:
        """Pods no trial in flight wants: stop the live ones (a sidecar can keep a finished
        trial's pod running); a foreign finished one goes too."""
        doomed = []
        for name, pod in pods.items():
            if name in wanted or pod.kind == "terminating":
                continue
            foreign = self.uid is not None and pod.owner_uid not in (None, self.uid)
            if (pod.live or foreign) and self.pods.may_delete(name, now):
                doomed.append((name, pod.uid))
        return doomed

    def _current(self, pod: PodView, attempt: int) -> bool:
        if self.uid is not None and pod.owner_uid not in (None, self.uid):
            return False
        return pod.attempt == attempt

    def note_created(self, name: str, attempt: int) -> None:
        self.pods.note_created(name, attempt, self.clock())
        self.refusals.pop(name, None)

    def create_refused(self, name: str, attempt: int, status: int, message: str) -> None:
        """The API server refused a trial's pod: say why, and give up on a lasting refusal."""
        previous = self.refusals.get(name)
        count = previous.count + 1 if previous and previous.attempt == attempt else 1
        refusal = Refusal(attempt, count, status, excerpt(message))
        self.refusals[name] = refusal
        if previous is None or previous.message != refusal.message:
            self._events.append(
                Event("Warning", "CreateRefused", f"{name}: HTTP {status}: {refusal.message}")
            )

    def delete_failed(self, name: str) -> None:
        self.pods.delete_failed(name)

    # ---- status ------------------------------------------------------------------------

    def _note_stuck(self, stuck: list[tuple[str, str]]) -> None:
        """TrialsStarted: False with the first problem's reason while trials cannot start,
        False with reason Queued while they only wait for Kueue's quota (which is no
        problem: they start as it frees up), True otherwise."""
        queued = [name for name, why in stuck if why == QUEUED_REASON]
        stuck = [(name, why) for name, why in stuck if why != QUEUED_REASON]
        waiting = f"{len(queued)} trial(s) queued by Kueue" if queued else ""
        if queued and not stuck:
            queue = self.spec.queue_name if self.spec is not None else None
            # Without spec.queueName, Kueue may still manage the namespace's workloads.
            by = f"queue {queue}" if queue else "Kueue"
            shown = ", ".join(queued[:STUCK_SHOWN])
            more = len(queued) - STUCK_SHOWN
            self.status.conditions = cond.set_condition(
                self.status.conditions,
                cond.TRIALS_STARTED,
                False,
                QUEUED_REASON,
                f"{waiting} wait for admission by {by}: {shown}"
                + (f" (and {more} more)" if more > 0 else ""),
                generation=self.generation,
            )
        elif stuck:
            shown = "; ".join(f"{name}: {why}" for name, why in stuck[:STUCK_SHOWN])
            more = len(stuck) - STUCK_SHOWN
            message = shown + (f" (and {more} more)" if more > 0 else "")
            reason = stuck[0][1].split(":", 1)[0] or "NotStarted"
            self.status.conditions = cond.set_condition(
                self.status.conditions,
                cond.TRIALS_STARTED,
                False,
                reason,
                f"{len(stuck)} trial(s) cannot start: {message}"
                + (f"; {waiting}" if waiting else ""),
                generation=self.generation,
            )
        elif cond.get_condition(self.status.conditions, cond.TRIALS_STARTED) is not None:
            self.status.conditions = cond.set_condition(
                self.status.conditions,
                cond.TRIALS_STARTED,
                True,
                "Started",
                "",
                generation=self.generation,
            )

    def _note_metrics(self, metrics: MetricsReading) -> None:
        if not metrics.queried:
            return
        if metrics.problem is not None:
            if not self.metrics_down:
                self._events.append(Event("Warning", metrics.reason, metrics.problem))
            self.metrics_down = True
            self.status.conditions = cond.set_condition(
                self.status.conditions,
                cond.METRICS_AVAILABLE,
                False,
                metrics.reason,
                f"{metrics.problem} (retrying; trials keep their state)",
                generation=self.generation,
            )
        else:
            self.metrics_down = False
            self.status.conditions = cond.set_condition(
                self.status.conditions,
                cond.METRICS_AVAILABLE,
                True,
                "MetricsRead",
                "",
                generation=self.generation,
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
            value = best.value if best.value is not None else best.values
            self._events.append(
                Event("Normal", "NewBest", f"{best.trial}: {value} with {best.parameters}")
            )
        if completion is not None and not self.announced_finish:
            self.announced_finish = True
            kind: EventType = "Normal" if completion.succeeded else "Warning"
            self._events.append(
                Event(kind, "SweepFinished", f"{completion.reason}: {completion.message}")
            )

    def _take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def take_suggestion_times(self) -> list[float]:
        times, self.suggestion_seconds = self.suggestion_seconds, []
        return times


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep as the spec models want it: no kopf bookkeeping, no status."""
    meta = dict(body.get("metadata") or {})
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            k: v
            for k, v in meta.items()
            if k in ("name", "namespace", "labels", "generation", "uid")
        },
        "spec": dict(body.get("spec") or {}),
    }


def _age(started_at: str | None, wall: float) -> float:
    if not started_at:
        return 0.0
    try:
        started = datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
    return max(0.0, wall - started)
