"""One sweep's live runtime: its reconciler, metrics source, wake-up flag, and one pass of I/O."""

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from kubetune.builders.contract import ATTEMPT_ANNOTATION
from kubetune.metrics import (
    MetricsError,
    MetricsSource,
    MetricsUnavailable,
    PrometheusSource,
    PrometheusUrlPolicy,
    QueryError,
    ScrapeSource,
    UrlRefused,
)
from kubetune.metrics.logs import LogSource, log_reading
from kubetune.operator.config import OperatorConfig
from kubetune.operator.effects import Event, MetricsReading, PodToCreate
from kubetune.operator.engine_pool import EnginePool
from kubetune.operator.kube import ApiError, KubeClient
from kubetune.operator.metrics import METRICS, OperatorMetrics
from kubetune.operator.nodes_shape import NODES_WORKLOAD_ANNOTATION, is_nodes_job
from kubetune.operator.nodes_shape import choose as choose_nodes_kind
from kubetune.operator.nodes_shape import recorded as recorded_nodes_kind
from kubetune.operator.nodes_shape import shaped as nodes_shaped
from kubetune.operator.pod_state import QUEUE_PREEMPTED, PodView
from kubetune.operator.reconcile import SweepReconciler
from kubetune.operator.trial_objects import create_trial, custom_views, delete_trial
from kubetune.spec import SweepSpec, parse_duration
from kubetune.spec.workload_kinds import WorkloadKind, kind_of
from kubetune.spec.workload_rules import shape_problems, workload_kind

log = logging.getLogger(__name__)

# After a failed API call, try again this soon rather than waiting a full interval.
RETRY_SECONDS = 1.0

# Posts one Kubernetes Event about the sweep (kopf.event in the operator, a list in tests).
EventPoster = Callable[[Event], None]
# Adds the owner reference to a child manifest (kopf.adopt in the operator).
Adopter = Callable[[dict[str, Any]], None]


def make_source(spec: SweepSpec, policy: PrometheusUrlPolicy, kube: KubeClient) -> MetricsSource:
    """The trial pods' logs when spec.metrics.logs is set; else Prometheus when the spec or the
    operator names one; else direct scrape of each pod.

    A spec's own URL only when the policy allows it (UrlRefused otherwise; the reconciler
    refuses such a spec before it gets here).
    """
    logs = log_reading(spec)
    if logs is not None:
        return LogSource(logs, pod_log_stream(kube))
    url = policy.resolve(spec.metrics.prometheus.url if spec.metrics.prometheus else None)
    if url is not None:
        objectives = spec.objective_list
        return PrometheusSource(
            url,
            metrics=[*(o.metric for o in objectives), *spec.additional_metrics],
            queries={o.metric: o.query for o in objectives if o.query},
        )
    return ScrapeSource(path=spec.metrics.scrape.path)


def pod_log_stream(
    kube: KubeClient,
) -> Callable[[str, str, str | None], AsyncIterator[bytes]]:
    async def stream(namespace: str, pod: str, container: str | None) -> AsyncIterator[bytes]:
        try:
            async for chunk in kube.stream_pod_log(namespace, pod, container):
                yield chunk
        except ApiError as error:
            # e.g. 400 while the container is still being created: that trial, not a source outage.
            raise MetricsUnavailable(f"pods/log of {pod}: {error}") from error

    return stream


class SweepRuntime:
    def __init__(
        self,
        namespace: str,
        name: str,
        uid: str | None,
        kube: KubeClient,
        config: OperatorConfig,
        engine: EnginePool,
        metrics: OperatorMetrics = METRICS,
    ) -> None:
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.kube = kube
        self.config = config
        self.engine = engine
        self.metrics = metrics
        self.policy = config.prometheus_policy()
        self.reconciler = self._new_reconciler()
        self.source: MetricsSource | None = None
        self.wake = asyncio.Event()
        self.last_patched: dict[str, Any] | None = None
        self.pending_events: list[Event] = []
        self.finished_at: list[float] = []
        self._finished_uids: set[str] = set()
        self.retry_soon = False
        # The sweep's resourceVersion that status writes are conditional on: the body's,
        # or a newer one from our own last write or re-read.
        self.resource_version: str | None = None
        self._body_version: str | None = None
        # The status (kopf bookkeeping aside) of the newest object the watch brought.
        self._read_status: dict[str, Any] = {}
        # Versions our own recent writes produced: their watch echoes are nothing new.
        self._written: deque[str | None] = deque(maxlen=16)
        self._told_too_large = False
        # The sweep's metadata as last seen, and what its trainer.nodes trials run as
        # (JobSet or Job; nodes_shape.py), once chosen and recorded on it.
        self._sweep_meta: dict[str, Any] = {}
        self.nodes_kind: str | None = None

    def _new_reconciler(self) -> SweepReconciler:
        """A reconciler that knows nothing yet: it reads the sweep's status on its first pass."""
        return SweepReconciler(
            self.namespace,
            self.name,
            self.uid,
            default_image=self.config.default_image,
            policy=self.config.pod_policy,
            prometheus_policy=self.policy,
        )

    def poke(self) -> None:
        self.wake.set()

    def pod_finished(self, uid: str) -> None:
        """A trial pod of this sweep ended: its slot is free, reconcile now."""
        if uid not in self._finished_uids:  # later events of the same pod are no new ending
            self._finished_uids.add(uid)
            self.finished_at.append(time.monotonic())
        self.wake.set()

    async def wait(self) -> None:
        """Sleep until poked, or for the sweep's interval."""
        if self.retry_soon:
            timeout = RETRY_SECONDS
        elif self.reconciler.engine is not None and self.reconciler.engine.running():
            spec = self.reconciler.spec
            timeout = parse_duration(spec.metrics.interval) if spec else 5.0
        else:
            timeout = self.config.idle_interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=timeout)
        self.wake.clear()

    async def close(self) -> None:
        if self.source is not None:
            await self.source.aclose()
            self.source = None

    async def read_metrics(self, pods: dict[str, PodView]) -> MetricsReading:
        targets = self.reconciler.metric_targets(pods)
        if not targets or self.source is None:
            return MetricsReading(queried=False)
        try:
            values = await self.source.collect(self.namespace, self.name, targets)
        except QueryError as error:
            return MetricsReading(problem=str(error), reason="QueryRejected")
        except MetricsUnavailable as error:
            return MetricsReading(problem=str(error), reason="PrometheusUnreachable")
        except MetricsError as error:
            return MetricsReading(problem=str(error), reason="MetricsUnreadable")
        except Exception as error:  # a reader bug must not abort the pass: a condition instead
            log.exception("%s/%s: reading metrics failed", self.namespace, self.name)
            problem = f"reading metrics failed: {type(error).__name__}"
            return MetricsReading(problem=problem, reason="MetricsUnreadable")
        return MetricsReading(values=values)

    async def reconcile_once(
        self,
        body: Any,
        pod_views: Iterable[PodView],
        post: EventPoster,
        adopt: Adopter,
        *,
        redo: bool = True,
    ) -> None:
        """One pass: accept the spec, observe, decide, write status, then act.

        The status write is conditional on the resourceVersion the pass started from; when
        another writer changed the status meanwhile, the pass is void and runs again from
        the re-read object (level-triggered: nothing decided on stale state is applied).
        """
        self.retry_soon = False
        self._sweep_meta = dict(body.get("metadata") or {})
        seen = self._sweep_meta.get("resourceVersion")
        if seen != self._body_version and seen not in self._written:
            # The watch brought a version we did not write: decide from it from now on, and
            # if its status is not the one we wrote, someone else wrote it: start over.
            self._body_version = self.resource_version = seen
            self._read_status = _plain_status(body.get("status"))
            if self.last_patched is not None and not _still_ours(
                body.get("status"), self.last_patched
            ):
                log.warning(
                    "%s/%s: status changed by another writer: rebuilding from it",
                    self.namespace,
                    self.name,
                )
                await self._start_over()
        with self.metrics.time_reconcile():
            rec = self.reconciler
            # Engine work (a rebuild from history, a GP ask at 1000 trials) can take seconds:
            # off the event loop, so watches, other sweeps and /healthz carry on meanwhile;
            # on the operator's few engine threads, so many sweeps' GP asks do not all hold
            # their torch buffers at once.
            snapshot = {
                key: body[key]
                for key in ("apiVersion", "kind", "metadata", "spec", "status")
                if key in body
            }
            if await self.engine.run(rec.accept, snapshot) or (
                self.source is None and rec.spec is not None
            ):
                await self.close()
                if rec.spec is not None:
                    try:
                        self.source = make_source(rec.spec, self.policy, self.kube)
                    except UrlRefused as error:  # accept() refuses these: not reached
                        log.error("%s/%s: %s", self.namespace, self.name, error)
            custom = self._custom_kind()
            if custom is not None:
                try:
                    found = await custom_views(self.kube, self.namespace, self.name, custom)
                except ApiError as error:  # its pods still tell; the next pass reads it again
                    self._api_error("ListWorkloads", error)
                    found = []
                pod_views = [*pod_views, *found]
            pods = _by_name(pod_views)
            reading = await self.read_metrics(pods)
            effects = await self.engine.run(rec.decide, pods, reading)
            for seconds in rec.take_suggestion_times():
                self.metrics.suggestion.observe(seconds)
            self.pending_events.extend(effects.events)
            if effects.status != self.last_patched:
                try:
                    fresh = await self._write_status(effects.status)
                except ApiError as error:
                    # Write-ahead: no pod is touched before the status that explains it is saved.
                    self._api_error("PatchStatus", error)
                    if error.status == 413 and not self._told_too_large:
                        self._told_too_large = True
                        post(Event("Warning", "StatusTooLarge", f"status not saved: {error}"))
                    return
                if fresh is not None:
                    if redo:
                        await self.reconcile_once(fresh, pod_views, post, adopt, redo=False)
                    else:
                        self.retry_soon = True
                    return
                self.last_patched = effects.status
            workloads = {name: (pod.workload, pod.attempt) for name, pod in pods.items() if pod.job}
            await self._act(effects.delete, effects.create, workloads, post, adopt, custom)
            if effects.prefetch is not None:
                await self._create_prefetch(effects.prefetch, post, adopt)
            if effects.tidy is not None:
                await self._create_tidy(effects.tidy, post, adopt)
            events, self.pending_events = self.pending_events, []
            for event in events:
                post(event)
            status = rec.status
            if status.phase != "Running":
                self.finished_at.clear()  # no next trial follows these: not a turnover
            best = status.best.value if status.best is not None else None
            self.metrics.set_sweep(
                self.namespace, self.name, status.phase, status.trials, best, status.gpu_hours
            )

    def _custom_kind(self) -> WorkloadKind | None:
        """The sweep's workload kind when it is one kubetune does not know (and valid)."""
        spec = self.reconciler.spec
        if spec is None or spec.workload is None or kind_of(spec.workload.object) is not None:
            return None
        if shape_problems(spec.workload):
            return None
        return workload_kind(spec.workload)

    async def _write_status(self, status: dict[str, Any]) -> dict[str, Any] | None:
        """Write the status onto the version this pass decided from.

        Returns None when written. On 409 Conflict it re-reads the sweep: if only metadata or
        spec moved (kopf's annotations, a user's edit) the status it decided is still the
        one to write, onto the newer version; if the status itself changed (another
        operator, a hand edit), this runtime starts over from the fresh object, which it
        returns so the pass can be redone from it.
        """
        for _attempt in range(3):
            try:
                answer = await self.kube.patch_sweep_status(
                    self.namespace, self.name, status, self.resource_version
                )
            except ApiError as error:
                if error.status != 409:
                    raise
                fresh = await self.kube.get_sweep(self.namespace, self.name)
                if fresh is None:
                    raise
                self.resource_version = fresh["metadata"].get("resourceVersion")
                stored = fresh.get("status")
                ours = (
                    _still_ours(stored, self.last_patched)
                    if self.last_patched is not None
                    # Nothing written yet: unchanged if it is still the status we read.
                    else _plain_status(stored) == self._read_status
                )
                if not ours:
                    log.warning(
                        "%s/%s: status changed by another writer: rebuilding from it",
                        self.namespace,
                        self.name,
                    )
                    self.metrics.error("PatchStatus:409")
                    await self._start_over()
                    return fresh
                continue
            self.resource_version = (answer.get("metadata") or {}).get("resourceVersion")
            self._written.append(self.resource_version)
            return None
        raise ApiError(409, "Conflict", "the sweep kept changing while its status was written")

    async def _start_over(self) -> None:
        """Forget all in-memory state: the next pass rebuilds it from the stored status."""
        await self.close()
        self.reconciler = self._new_reconciler()
        self.last_patched = None
        self.pending_events = []

    async def _act(
        self,
        delete: list[tuple[str, str]],
        create: list[PodToCreate],
        workloads: dict[str, tuple[str | None, int]],
        post: EventPoster,
        adopt: Adopter,
        custom: WorkloadKind | None = None,
    ) -> None:
        for name, uid in delete:
            try:
                workload, attempt = workloads.get(name, (None, 0))
                await delete_trial(self.kube, self.namespace, name, uid, workload, attempt, custom)
            except ApiError as error:
                self._api_error("DeletePod", error)
                self.reconciler.delete_failed(name)
        for item in create:
            manifest = item.manifest
            try:
                if is_nodes_job(manifest):
                    manifest = nodes_shaped(manifest, await self._nodes_kind(manifest))
            except ApiError as error:  # not recorded: nothing created; the next pass retries
                self._api_error("AnnotateSweep", error)
                continue
            adopt(manifest)
            try:
                created = await create_trial(self.kube, manifest, custom)
            except ApiError as error:
                self._api_error("CreatePod", error)
                if error.status:  # the API server answered: say why, and count it
                    self.reconciler.create_refused(
                        item.name, item.attempt, error.status, f"{error.reason}: {error.message}"
                    )
                continue
            self.reconciler.note_created(item.name, item.attempt)
            if created is None:
                continue  # it already exists: a pass before a restart made it
            if self.finished_at:
                self.metrics.turnover.observe(time.monotonic() - self.finished_at.pop(0))
            params = ", ".join(f"{k}={v}" for k, v in item.params.items())
            post(Event("Normal", "TrialStarted", f"{item.name} (attempt {item.attempt}): {params}"))

    async def _nodes_kind(self, job: dict[str, Any]) -> str:
        """JobSet or Job for this sweep's trainer.nodes trials: the one recorded on the sweep,
        else chosen now and recorded before the first such trial is created."""
        if self.nodes_kind is None:
            kind = recorded_nodes_kind(self._sweep_meta)
            if kind is None:
                kind = await choose_nodes_kind(self.kube, self.config.nodes_workload, job)
                answer = await self.kube.annotate_sweep(
                    self.namespace, self.name, {NODES_WORKLOAD_ANNOTATION: kind}
                )
                # Our own write: the status is still ours to write onto this version.
                version = (answer.get("metadata") or {}).get("resourceVersion")
                self.resource_version = version
                self._written.append(version)
                log.info("%s/%s: trainer.nodes trials run as %s", self.namespace, self.name, kind)
            self.nodes_kind = kind
        return self.nodes_kind

    async def _create_prefetch(
        self, manifest: dict[str, Any], post: EventPoster, adopt: Adopter
    ) -> None:
        """The sweep's prefetch pod; a refused create is retried on the next pass."""
        meta = manifest["metadata"]
        adopt(manifest)
        try:
            created = await self.kube.create_pod(manifest)
        except ApiError as error:
            self._api_error("CreatePod", error)
            post(Event("Warning", "CreateRefused", f"{meta['name']}: {error}"))
            return
        generation = int(meta["annotations"][ATTEMPT_ANNOTATION])
        self.reconciler.note_created(meta["name"], generation)
        if created is not None:
            post(Event("Normal", "PrefetchStarted", f"{meta['name']}: filling trainer.cache"))

    async def _create_tidy(
        self, manifest: dict[str, Any], post: EventPoster, adopt: Adopter
    ) -> None:
        """The ended sweep's tidy pod, once (CheckpointsTidied is already saved): best effort,
        a refused create is only said."""
        name = manifest["metadata"]["name"]
        adopt(manifest)
        try:
            await self.kube.create_pod(manifest)
        except ApiError as error:
            self._api_error("CreatePod", error)
            post(Event("Warning", "TidyRefused", f"{name}: {error}"))
            return
        post(Event("Normal", "TidyStarted", f"{name}: removing ended trials' checkpoints"))

    def _api_error(self, action: str, error: ApiError) -> None:
        log.warning("%s/%s: %s failed: %s", self.namespace, self.name, action, error)
        self.metrics.error(f"{action}:{error.status}")
        self.retry_soon = True


def _by_name(views: Iterable[PodView]) -> dict[str, PodView]:
    """The newest attempt's view of each trial; of one attempt, its pod's view wins over
    its suspended workload's (the pod of a workload being suspended again is still going
    away; once it ended only by being deleted, Kueue's suspension is why: its ending is
    named Preempted), and a failed workload's (pod_state.job_view) wins over its pod's
    unless that pod ended with a verdict of its own to carry the failure: then it is that
    ending with the workload's failure added (trial_ending judges the two together)."""
    pods: dict[str, PodView] = {}
    for pod in views:
        known = pods.get(pod.name)
        if known is not None and known.attempt == pod.attempt:
            merged = (
                _with_workload_failure(known, pod)
                or _with_workload_failure(pod, known)
                or _preempted(known, pod)
                or _preempted(pod, known)
            )
            if merged is not None:
                pods[pod.name] = merged
                continue
        if known is None or _rank(pod) >= _rank(known):
            pods[pod.name] = pod
    return pods


def _failure_of(view: PodView) -> str | None:
    return None if view.ending is None else view.ending.workload_failed


def _with_workload_failure(pod: PodView, workload: PodView) -> PodView | None:
    failure = _failure_of(workload)
    if failure is None or _failure_of(pod) is not None:
        return None
    if pod.kind != "ended" or pod.ending is None:
        return workload
    # The pod's own facts (result, GPU time) with the workload's failure; the delete stops
    # the workload (its uid), not only the pod.
    ending = dataclasses.replace(pod.ending, workload_failed=failure)
    return dataclasses.replace(pod, ending=ending, uid=workload.uid or pod.uid)


def _preempted(pod: PodView, workload: PodView) -> PodView | None:
    """The pod's ending named Preempted when its workload is suspended again (Kueue took back
    its admission) and the pod ended only by its deletion, no reason of its own
    (TrialEnding.deleted, a fact pod_state records, never the reason's wording): the
    deletion was the workload controller's, for Kueue. Any other ending (its own exit, a
    result, a disruption the cluster named) stays the pod's, for trial_ending to judge."""
    if workload.kind != "queued" or not workload.job or workload.pod_name is not None:
        return None
    if pod.kind != "ended" or pod.ending is None or not pod.ending.deleted:
        return None
    ending = dataclasses.replace(pod.ending, disruption=QUEUE_PREEMPTED)
    return dataclasses.replace(pod, ending=ending, uid=workload.uid or pod.uid)


def _rank(view: PodView) -> tuple[int, bool]:
    return view.attempt, not view.job or view.pod_name is not None


def _plain_status(status: Any) -> dict[str, Any]:
    """A stored status without kopf's bookkeeping, which kopf writes on its own."""
    if not isinstance(status, dict):
        return {}
    return {k: v for k, v in status.items() if k != "kopf"}


def _still_ours(stored: Any, written: dict[str, Any] | None) -> bool:
    """Whether the stored status is (at least) what this runtime last wrote."""
    if written is None or not isinstance(stored, dict):
        return False
    return all(stored.get(key) == value for key, value in written.items())
