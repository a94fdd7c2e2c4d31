"""One sweep's reconcile decisions: observed pods and metrics in, engine calls and effects out.

No I/O here. The daemon (handlers.py) gathers pods and metrics, calls `decide`, then
writes the status first and acts second (creates and deletes pods, posts events): the
status is the write-ahead log, so an operator killed between the two redoes the acts
from the status after a restart and never runs a trial twice or loses its result.
Pods are converged level-based: every pass compares the trials the engine has in flight
with the pods that exist.
"""

import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubetune.builders.errors import BuildError
from kubetune.builders.pod import build_trial_pod
from kubetune.conventions import trial_name
from kubetune.engine import Completion, HistoryError, SweepEngine
from kubetune.metrics import TrialReading, TrialTarget, short_name
from kubetune.operator import conditions as cond
from kubetune.operator.effects import Effects, Event, EventType, MetricsReading, PodToCreate
from kubetune.operator.pod_state import PodView
from kubetune.operator.spec_guard import search_space_hash
from kubetune.operator.sweep_status import compose_status, status_from
from kubetune.spec import (
    CategoricalParameter,
    HyperparameterSweep,
    SpecError,
    SweepSpec,
    SweepStatus,
    effective_spec,
    parse_sweep,
)
from kubetune.spec.checks import semantic_problems
from kubetune.spec.status import TrialRecord
from kubetune.trial_result import TrialResult

# A pod we created may take this long to show up in the watch-fed index.
CREATE_GRACE_SECONDS = 30.0
# Do not ask again to delete a pod we asked to delete this recently.
DELETE_RETRY_SECONDS = 10.0


class SweepReconciler:
    """The in-memory state of one sweep across passes: engine, accepted spec, status."""

    def __init__(
        self,
        namespace: str,
        name: str,
        uid: str | None,
        *,
        default_image: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.default_image = default_image
        self.engine: SweepEngine | None = None
        self.spec: SweepSpec | None = None  # effective spec the engine runs
        self.sweep: HyperparameterSweep | None = None
        self.generation: int | None = None  # generation last looked at
        self.accepted_hash: str | None = None
        self.hold: str | None = None  # why no new trials start (invalid or refused edit)
        self.invalid = False
        self.status = SweepStatus()
        self.created: dict[str, tuple[int, float]] = {}
        self.deleting: dict[str, float] = {}
        self.last_values: dict[str, TrialReading] = {}
        # Trials that ran while the metrics source was down: their readings have gaps.
        self.blind: set[str] = set()
        self.best_number: int | None = None
        self.announced_finish = False
        self.metrics_down = False
        self._events: list[Event] = []
        self.suggestion_seconds: list[float] = []

    # ---- spec ------------------------------------------------------------------------

    def accept(self, body: Mapping[str, Any]) -> bool:
        """Look at the sweep's current spec; True when the metrics source must be rebuilt."""
        meta = body.get("metadata") or {}
        generation = meta.get("generation")
        settled = self.engine is not None or self.hold is not None
        if settled and generation == self.generation:
            return False
        first_look = self.generation is None
        self.generation = generation
        if first_look:
            self.status = status_from(body)
            self.accepted_hash = self.status.search_space_hash
            self.announced_finish = self.status.phase in ("Succeeded", "Failed")
        try:
            sweep = parse_sweep(_plain(body), f"{self.namespace}/{self.name}")
            problems = semantic_problems(sweep)
            if problems:
                raise SpecError(f"{self.namespace}/{self.name}", problems)
            spec = effective_spec(sweep.spec)
            self._probe_build(sweep, spec)
        except SpecError as error:
            self._refuse("InvalidSpec", "; ".join(error.problems), invalid=True)
            return False
        except BuildError as error:
            self._refuse("InvalidSpec", str(error), invalid=True)
            return False
        digest = search_space_hash(spec)
        if self.accepted_hash is not None and digest != self.accepted_hash:
            self._refuse(
                "SearchSpaceChanged",
                "spec.parameters / spec.objective cannot change once a sweep has started; "
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
        self.engine, self.spec, self.sweep = engine, spec, sweep
        self.accepted_hash = digest
        self.hold = None
        self.invalid = False
        self.best_number = self.best_number if self.best_number is not None else _best_n(engine)
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

    def _probe_build(self, sweep: HyperparameterSweep, spec: SweepSpec) -> None:
        # Building one pod now finds a template or image problem before any trial is recorded.
        sample: dict[str, Any] = {
            p.name: p.values[0] if isinstance(p, CategoricalParameter) else p.min
            for p in spec.parameters
        }
        build_trial_pod(sweep, spec, 0, sample, default_image=self.default_image)

    def _refuse(self, reason: str, message: str, *, invalid: bool) -> None:
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
        """Trials to read: running ones, and finished ones still waiting for a final value."""
        if self.engine is None or self.spec is None:
            return []
        port = self.spec.metrics.scrape.port
        wanted = [short_name(o.metric) for o in self.spec.objective_list]
        targets = []
        for number in self.engine.running():
            name = trial_name(self.name, number)
            pod = pods.get(name)
            if pod is None or pod.kind not in ("running", "succeeded"):
                continue
            result = pod.result if pod.kind == "succeeded" else None
            if result is not None and all(m in result.metrics for m in wanted):
                continue  # its termination message has the final values already
            targets.append(TrialTarget(name=name, address=pod.ip, port=port))
        return targets

    # ---- decide ------------------------------------------------------------------------

    def decide(
        self,
        pods: Mapping[str, PodView],
        metrics: MetricsReading,
        now: float | None = None,
        wall: float | None = None,
    ) -> Effects:
        now = time.monotonic() if now is None else now
        wall = time.time() if wall is None else wall
        engine = self.engine
        if engine is None or self.spec is None or self.sweep is None:
            # No engine: an invalid spec (no trial may run, nor hold a GPU), or an edit
            # refused before this process ever accepted the sweep (after a restart): its
            # trials keep running untouched until the edit is reverted.
            effects = Effects(status=self._compose_status(None))
            if self.invalid:
                effects.delete = self._stray_pods(pods, set(), now)
            effects.events = self._take_events()
            return effects
        self._note_metrics(metrics)
        for name, values in metrics.values.items():
            self.last_values[name] = values
        if metrics.problem is not None:
            self.blind.update(trial_name(self.name, n) for n in engine.running())
        self._observe(engine, pods, metrics, wall)
        completion = engine.finished()
        if completion is None and metrics.problem is None and not self.spec.multi_objective:
            for number in engine.to_prune():
                if engine.prune(number):
                    self._events.append(
                        Event(
                            "Normal",
                            "TrialPruned",
                            f"{trial_name(self.name, number)} stopped early",
                        )
                    )
        completion = engine.finished()
        if completion is not None:
            self._stop_all(engine, "sweep finished")
        elif self.spec.suspend:
            for number in engine.running():
                engine.requeue(number, "Suspended")
        elif self.hold is None:
            started = time.perf_counter()
            engine.start_trials()
            self.suggestion_seconds.append(time.perf_counter() - started)
        effects = Effects(status=self._compose_status(completion))
        self._converge(engine, pods, effects, now)
        self._announce(engine, completion)
        effects.events = self._take_events()
        return effects

    def _observe(
        self,
        engine: SweepEngine,
        pods: Mapping[str, PodView],
        metrics: MetricsReading,
        wall: float,
    ) -> None:
        assert self.spec is not None
        timeout = self.spec.budget.trial_timeout_seconds()
        for number in engine.running():
            record = engine.trial(number)
            name = trial_name(self.name, number)
            pod = pods.get(name)
            if pod is None or not self._current(pod, record):
                if pod is None and record.state == "Running" and not self._recently_created(name):
                    engine.requeue(number, "PodDeleted: the trial pod disappeared")
                    self._events.append(
                        Event("Warning", "TrialRequeued", f"{name}: pod disappeared; rerunning")
                    )
                continue
            if pod.kind == "running":
                engine.mark_running(number)
                if timeout is not None and _age(pod.started_at, wall) > timeout:
                    engine.fail(
                        number, f"TrialTimeout: ran past budget.trialTimeout ({timeout:g}s)"
                    )
                    self._events.append(Event("Warning", "TrialFailed", f"{name}: trial timeout"))
                    continue
                self._report(engine, number, metrics.values.get(name))
            elif pod.kind == "succeeded":
                self._finish(engine, number, pod, metrics)
            elif pod.kind == "failed":
                reason = pod.reason or "Failed"
                if engine.fail(number, reason):
                    self._events.append(Event("Warning", "TrialFailed", f"{name}: {reason}"))
            elif pod.kind == "disrupted":
                reason = pod.reason or "Disrupted"
                if engine.requeue(number, reason):
                    self._events.append(
                        Event("Normal", "TrialRequeued", f"{name}: {reason}; rerunning")
                    )

    def _report(self, engine: SweepEngine, number: int, values: TrialReading | None) -> None:
        assert self.spec is not None
        if values is None or self.spec.multi_objective:
            return
        # Same rule as the local runner: a gauge at step 0 is no evaluation yet.
        evaluation = values.evaluation(self.spec.objective_list[0].metric)
        if evaluation is not None:
            engine.report(number, *evaluation)

    def _finish(
        self, engine: SweepEngine, number: int, pod: PodView, metrics: MetricsReading
    ) -> None:
        assert self.spec is not None
        name = trial_name(self.name, number)
        result = pod.result
        objectives = self.spec.objective_list
        # While the source is down an older reading may not be the final one: wait for it.
        last = (
            None
            if metrics.problem is not None
            else metrics.values.get(name) or self.last_values.get(name)
        )
        if name in self.blind and last is not None and not last.done:
            last = None  # read before an outage: maybe not the trial's final value
        values: list[float] = []
        for objective in objectives:
            value = _final_value(objective.metric, result, last)
            if value is None:
                if metrics.problem is not None:
                    return  # wait rather than misjudge the trial
                if name in self.blind:
                    # The source was down while it ran: its values are lost, not bad. Rerun.
                    self.blind.discard(name)
                    if engine.requeue(number, "MetricsLost: metrics unreadable while it ran"):
                        self._events.append(
                            Event("Warning", "TrialRequeued", f"{name}: metrics lost; rerunning")
                        )
                    return
                reason = f"NoObjectiveValue: the trial reported no {objective.metric}"
                if engine.fail(number, reason):
                    self._events.append(Event("Warning", "TrialFailed", f"{name}: {reason}"))
                return
            values.append(value)
        if not self.spec.multi_objective and result is not None:
            metric = short_name(objectives[0].metric)
            for at, point in result.intermediate.get(metric, []):
                engine.report(number, at, point)
        if engine.complete(number, values, _final_step(result, last)):
            self.last_values.pop(name, None)
            self.blind.discard(name)
            text = ", ".join(f"{o.metric}={v:g}" for o, v in zip(objectives, values, strict=True))
            self._events.append(Event("Normal", "TrialSucceeded", f"{name}: {text}"))

    def _stop_all(self, engine: SweepEngine, why: str) -> None:
        for number in engine.running():
            if engine.prune(number):
                self._events.append(
                    Event("Normal", "TrialStopped", f"{trial_name(self.name, number)}: {why}")
                )

    # ---- pods --------------------------------------------------------------------------

    def _converge(
        self, engine: SweepEngine, pods: Mapping[str, PodView], effects: Effects, now: float
    ) -> None:
        assert self.sweep is not None and self.spec is not None
        wanted: set[str] = set()
        for number in engine.running():
            record = engine.trial(number)
            name = trial_name(self.name, number)
            attempt = record.attempt
            wanted.add(name)
            pod = pods.get(name)
            if pod is not None and self._current(pod, record):
                self.created.pop(name, None)
                continue
            if pod is not None:
                # A leftover of an earlier attempt (or of another sweep of this name).
                if pod.kind != "terminating" and self._may_delete(name, now):
                    effects.delete.append((name, pod.uid))
                continue
            if self._recently_created(name, attempt):
                continue
            manifest = build_trial_pod(
                self.sweep,
                self.spec,
                number,
                record.params,
                attempt=attempt,
                default_image=self.default_image,
            )
            effects.create.append(PodToCreate(number, name, attempt, dict(record.params), manifest))
        effects.delete.extend(self._stray_pods(pods, wanted, now))

    def _stray_pods(
        self, pods: Mapping[str, PodView], wanted: set[str], now: float
    ) -> list[tuple[str, str]]:
        """Pods no trial in flight wants: stop the live ones; a foreign finished one goes too."""
        doomed = []
        for name, pod in pods.items():
            if name in wanted or pod.kind == "terminating":
                continue
            live = pod.kind in ("pending", "running")
            foreign = self.uid is not None and pod.owner_uid not in (None, self.uid)
            if (live or foreign) and self._may_delete(name, now):
                doomed.append((name, pod.uid))
        return doomed

    def _current(self, pod: PodView, record: TrialRecord) -> bool:
        if self.uid is not None and pod.owner_uid not in (None, self.uid):
            return False
        return pod.attempt == record.attempt

    def _recently_created(self, name: str, attempt: int | None = None) -> bool:
        entry = self.created.get(name)
        if entry is None:
            return False
        if attempt is not None and entry[0] != attempt:
            return False
        return time.monotonic() - entry[1] < CREATE_GRACE_SECONDS

    def _may_delete(self, name: str, now: float) -> bool:
        asked = self.deleting.get(name)
        if asked is not None and now - asked < DELETE_RETRY_SECONDS:
            return False
        self.deleting[name] = now
        return True

    def note_created(self, name: str, attempt: int) -> None:
        self.created[name] = (attempt, time.monotonic())

    # ---- status ------------------------------------------------------------------------

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

    def _compose_status(self, completion: Completion | None) -> dict[str, Any]:
        return compose_status(
            self.status,
            self.engine,
            self.spec,
            completion,
            invalid=self.invalid,
            hold=self.hold,
            generation=self.generation,
            accepted_hash=self.accepted_hash,
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


def _best_n(engine: SweepEngine) -> int | None:
    best = engine.best()
    return best.number if best is not None else None


def _final_value(
    metric: str, result: TrialResult | None, last: TrialReading | None
) -> float | None:
    """The termination message wins (written at the very end); else the last reading."""
    key = short_name(metric)
    if result is not None and key in result.metrics:
        value = result.metrics[key]
        if math.isfinite(value):
            return value
    if last is not None:
        return last.value(metric)
    return None


def _final_step(result: TrialResult | None, last: TrialReading | None) -> int | None:
    if result is not None and result.steps:
        return result.steps
    if last is not None:
        return last.measured_at
    return None


def _age(started_at: str | None, wall: float) -> float:
    if not started_at:
        return 0.0
    try:
        started = datetime.fromisoformat(started_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
    return max(0.0, wall - started)
