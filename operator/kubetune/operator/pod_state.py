"""What a trial pod says about its trial: queued, still starting, running, or ended (and how).

Pure functions over the pod as a dict (the shape the API returns). The pod only supplies
the facts; whether an ending is a success, a failure or a rerun is trial_ending.judge's
call, the same one `kubetune run` makes for a local process.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from kubetune import conventions
from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    CONTAINER_ANNOTATION,
    NODES_ANNOTATION,
    PRIMARY_ANNOTATION,
    WORKLOAD_ANNOTATION,
)
from kubetune.spec import trainjob
from kubetune.spec.workload_kinds import KINDS, TRAINJOB, WorkloadKind, parse_selector
from kubetune.trial_ending import TrialEnding
from kubetune.trial_result import TrialResult

# Pod-level reasons that mean the cluster took the pod away: rerun, not a failure.
DISRUPTION_REASONS = frozenset(
    {
        "Evicted",
        "Preempted",
        "PreemptionByScheduler",
        "NodeLost",
        "NodeShutdown",
        "Shutdown",
        "Terminated",
        "TerminationByKubelet",
        "DeletionByTaintManager",
        "DeletionByPodGC",
        "EvictionByEvictionAPI",
        "UnexpectedAdmissionError",
    }
)
# A pod deleted with no reason of its own (no disruption condition): someone deleted it.
# Its ending's reason only; that it was such a deletion is the fact TrialEnding.deleted.
POD_DELETED = "PodDeleted: the trial pod was deleted"
# Kueue suspended the trial's admitted workload again to make room (preempted it): its pod
# is deleted for that, whether kubetune sees the pod end (runtime._by_name) or already gone.
QUEUE_PREEMPTED = "Preempted: Kueue suspended the trial's workload"
# Waiting reasons that can never resolve: the trial fails at once.
PERMANENT_WAITING = frozenset({"InvalidImageName", "ErrImageNeverPull"})
# Waiting reasons that often resolve on their own (a registry hiccup, a Secret created a
# few seconds late): the trial fails only if they last past the start grace period.
TRANSIENT_WAITING = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError", "CreateContainerError"}
)

# "queued": Kueue has not admitted the trial yet (spec.queueName): a suspended Job, or a
# pod its webhook gated.
Kind = Literal["queued", "pending", "running", "ended", "terminating"]

GPU_RESOURCE = "nvidia.com/gpu"
# Kubernetes keeps at most this much of a termination message.
MESSAGE_BYTES = 4096
# The scheduling gate Kueue's pod webhook adds to a queued pod and removes on admission.
KUEUE_GATE = "kueue.x-k8s.io/admission"


@dataclass(frozen=True)
class PodView:
    """The parts of a trial pod the reconcile needs."""

    name: str
    uid: str
    attempt: int
    kind: Kind
    ip: str | None = None
    # The trial's container (the builder's annotation): whose log holds its metrics.
    container: str | None = None
    result: TrialResult | None = None
    started_at: str | None = None
    created_at: str | None = None
    owner_uid: str | None = None
    # Still holds its node's resources (a sidecar can keep a pod running after the trial ended).
    live: bool = False
    # kind "ended": the facts of the ending, without the metrics (the reconcile adds them).
    ending: TrialEnding | None = None
    # The trial container cannot start yet: (reason, message).
    waiting: tuple[str, str] | None = None
    # The scheduler cannot place the pod: its message.
    unschedulable: str | None = None
    # GPUs the pod holds (gpus_of), and when the trial container finished (RFC 3339).
    gpus: int = 0
    finished_at: str | None = None
    # Made by a trial Job (spec.workload): `name` is the trial's (the Job's) name and `uid`
    # the Job's, so that a delete stops the Job; `pod_name` is the pod's own.
    job: bool = False
    pod_name: str | None = None
    # The sweep's prefetch pod (builders/prefetch.py), never a trial: its raw termination
    # message (a JSON line, at most Kubernetes' 4096 bytes) is the prefetch's result.
    prefetch: bool = False
    message: str | None = None
    # The trial's workload (apiVersion/kind) when it is one: what a delete stops.
    workload: str | None = None

    def gpu_seconds(self, now: float) -> float:
        """GPUs x the time from the pod's start to the trial container's end (else `now`,
        wall-clock seconds: a running pod, or one whose node stopped reporting)."""
        started = parse_time(self.started_at)
        if not self.gpus or started is None:
            return 0.0
        finished = parse_time(self.finished_at)
        end = finished if finished is not None else now
        return self.gpus * max(0.0, end - started)


def parse_time(stamp: str | None) -> float | None:
    """An API timestamp (RFC 3339) as epoch seconds; None when absent or unreadable."""
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def gpus_of(pod: Mapping[str, Any]) -> int:
    """GPUs (nvidia.com/gpu) the pod is scheduled with, as Kubernetes counts a pod's request:
    the sum over its containers, or the largest init container's if that is more. A
    container's limit stands for its request (extended resources may not overcommit)."""
    spec = pod.get("spec") or {}

    def count(container: Mapping[str, Any]) -> int:
        resources = container.get("resources") or {}
        for kind in ("limits", "requests"):
            raw = (resources.get(kind) or {}).get(GPU_RESOURCE)
            if raw is not None:
                try:
                    return max(0, int(str(raw)))
                except ValueError:
                    return 0
        return 0

    regular = sum(count(c) for c in spec.get("containers") or [])
    init = max((count(c) for c in spec.get("initContainers") or []), default=0)
    return max(regular, init) * _nodes(pod)


def _nodes(pod: Mapping[str, Any]) -> int:
    """Pods of the trial this pod (or pod template) is one of (trainer.nodes; else 1): the
    trial is judged by its primary pod alone, which so counts the GPUs of all of them."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(NODES_ANNOTATION, "1")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def attempt_of(pod: Mapping[str, Any]) -> int:
    raw = (pod.get("metadata", {}).get("annotations") or {}).get(ATTEMPT_ANNOTATION, "1")
    try:
        return int(raw)
    except ValueError:
        return 1


def is_primary(pod: Mapping[str, Any]) -> bool:
    """Whether the pod is its trial's primary pod: a workload with more than one pod marks
    the labels only that one has (PRIMARY_ANNOTATION); its other pods are not judged."""
    meta = pod.get("metadata") or {}
    selector = (meta.get("annotations") or {}).get(PRIMARY_ANNOTATION)
    if selector is None:
        return True
    labels = meta.get("labels") or {}
    return all(labels.get(key) == value for key, value in parse_selector(selector).items())


def view(pod: Mapping[str, Any]) -> PodView:
    """Classify one trial pod, judging by the container the builder marked as the trial's."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    container_name = (meta.get("annotations") or {}).get(CONTAINER_ANNOTATION)
    container = _container_status(status, container_name)
    state = (container or {}).get("state") or {}
    terminated = state.get("terminated")
    waiting = state.get("waiting")
    phase = status.get("phase", "Pending")
    deleting = bool(meta.get("deletionTimestamp"))
    result = _result(terminated)
    base: dict[str, Any] = {
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "attempt": attempt_of(pod),
        "ip": status.get("podIP"),
        "container": container_name,
        "result": result,
        "started_at": status.get("startTime"),
        "created_at": meta.get("creationTimestamp"),
        "owner_uid": next(
            (ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("controller")),
            None,
        ),
        "live": phase in ("Pending", "Running") and not deleting,
        "gpus": gpus_of(pod),
        # A trial container that never ran has no running time: from start to start.
        "finished_at": (terminated or {}).get("finishedAt")
        or (None if "running" in state else status.get("startTime")),
    }
    if (meta.get("labels") or {}).get(
        conventions.LABEL_COMPONENT
    ) == conventions.COMPONENT_PREFETCH:
        base["prefetch"] = True
        base["result"] = None
        base["message"] = str((terminated or {}).get("message") or "")[:MESSAGE_BYTES]
    workload = (meta.get("annotations") or {}).get(WORKLOAD_ANNOTATION)
    job = job_owner(meta) if workload is None else _workload_owner(meta, workload)
    if job is not None:
        # The Job is the sweep's, its pod the Job's: the trial is the Job.
        labels = meta.get("labels") or {}
        base["name"] = str(labels.get(conventions.LABEL_TRIAL) or job.get("name") or "")
        base["uid"] = str(job.get("uid") or "")
        base["owner_uid"] = None
        base["job"] = True
        base["pod_name"] = meta.get("name", "")
        base["workload"] = workload or "batch/v1/Job"
    disruption = _disruption(status)
    if phase == "Unknown":
        # The node stopped reporting: the pod's fate is unknowable, rerun it elsewhere.
        ending = TrialEnding(None, disruption=str(status.get("reason") or "NodeLost"))
        return PodView(kind="ended", ending=ending, **base)
    if phase in ("Succeeded", "Failed") or terminated:
        # A trial ends with its own container, whatever a sidecar still does.
        deleted = disruption is None and deleting and phase != "Succeeded"
        if deleted:
            disruption = POD_DELETED
        ending = _ending(terminated, result, status, disruption, deleted=deleted)
        return PodView(kind="ended", ending=ending, **base)
    if deleting:
        return PodView(kind="terminating", **base)
    if waiting and waiting.get("reason") in PERMANENT_WAITING | TRANSIENT_WAITING:
        base["waiting"] = (str(waiting["reason"]), str(waiting.get("message") or ""))
    if phase == "Running":
        return PodView(kind="running", **base)
    if _gated(pod):
        return PodView(kind="queued", **base)
    return PodView(kind="pending", unschedulable=_unschedulable(status), **base)


def job_view(job: Mapping[str, Any], custom: WorkloadKind | None = None) -> PodView | None:
    """A trial workload (Job, JobSet, PyTorchJob, or a `custom` kind the sweep describes) as
    its own view of the trial, or None:
    - Kueue has not admitted it (suspended, not finished or deleting): the trial is queued;
    - its failure condition holds (not a Job's: a Job's one pod tells): the trial ended,
      failed whatever its primary pod says (a worker failed; the controller may then have
      deleted the primary pod too, which alone would look like a disruption);
    - a custom kind's success condition holds: the trial ended as exit 0 (its primary pod's
      own view, while the pod exists, wins over this one: runtime._by_name).
    Otherwise its pods tell the trial's state, and while the controller has made none yet
    the trial is simply pending."""
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    kind = KINDS.get((str(job.get("apiVersion")), str(job.get("kind")))) or custom
    if kind is None or meta.get("deletionTimestamp"):
        return None
    labels = meta.get("labels") or {}
    identity: dict[str, Any] = {
        "name": str(labels.get(conventions.LABEL_TRIAL) or meta.get("name") or ""),
        "uid": str(meta.get("uid") or ""),
        "attempt": attempt_of(job),
        "created_at": meta.get("creationTimestamp"),
        "owner_uid": next(
            (ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("controller")),
            None,
        ),
        "job": True,
        "workload": f"{kind.api_version}/{kind.kind}",
    }
    failed = kind.failed(job)
    # A Job of one pod: that pod tells. A trainer.nodes Job's pods: a failed worker pod fails
    # the Job, which then deletes the primary pod, which alone would look like a disruption.
    templates = kind.templates(job)
    nodes = _nodes(templates[0][1]) if templates else 1
    if failed is not None and (kind.kind != "Job" or nodes > 1):
        ending = TrialEnding(None, workload_failed=failed)
        return PodView(kind="ended", ending=ending, **identity)
    succeeded = kind.succeeded(job)
    if succeeded and kind.custom:
        ending = TrialEnding(0, detail=f"{kind.kind} succeeded")
        return PodView(kind="ended", ending=ending, **identity)
    if succeeded or failed is not None:
        return None
    suspended = spec.get("suspend") or (spec.get("runPolicy") or {}).get("suspend")
    if not suspended or kind.custom:  # kubetune suspends no custom kind (no queueName)
        return None
    gpus = sum(gpus_of(t) for _path, t in templates[:1])
    if kind is TRAINJOB:  # no template: its primary pod's GPUs are resourcesPerNode's
        gpus = trainjob.gpus(job) // trainjob.num_nodes(job)
    return PodView(kind="queued", gpus=gpus, **identity)


def _workload_owner(meta: Mapping[str, Any], workload: str) -> Mapping[str, Any] | None:
    """A workload pod's trial object: its controller when that is the workload itself (a
    PyTorchJob's pods), else the workload by name only (a JobSet's pods belong to its Jobs)."""
    api_version, _sep, kind = workload.rpartition("/")
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and (ref.get("apiVersion"), ref.get("kind")) == (
            api_version,
            kind,
        ):
            return dict(ref)
    return {"name": (meta.get("labels") or {}).get(conventions.LABEL_TRIAL), "uid": ""}


def job_owner(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The controlling batch/v1 Job of a pod, if a Job made it."""
    for ref in meta.get("ownerReferences") or []:
        if (
            ref.get("controller")
            and ref.get("kind") == "Job"
            and ref.get("apiVersion") == "batch/v1"
        ):
            return dict(ref)
    return None


def _ending(
    terminated: dict[str, Any] | None,
    result: TrialResult | None,
    status: dict[str, Any],
    disruption: str | None,
    *,
    deleted: bool,
) -> TrialEnding:
    terminated = terminated or {}
    exit_code = terminated.get("exitCode")
    if exit_code is None and status.get("phase") == "Succeeded":
        exit_code = 0
    pod_reason = status.get("reason")
    detail = ", ".join(str(p) for p in (pod_reason, terminated.get("reason")) if p)
    return TrialEnding(
        exit_code=exit_code if isinstance(exit_code, int) else None,
        result=result,
        # activeDeadlineSeconds is budget.trialTimeout: kubetune's own stop.
        stop="timeout" if pod_reason == "DeadlineExceeded" else None,
        disruption=disruption,
        deleted=deleted,
        oom=terminated.get("reason") == "OOMKilled",
        detail=detail,
    )


def _container_status(status: dict[str, Any], name: str | None) -> dict[str, Any] | None:
    statuses = status.get("containerStatuses") or []
    if name is not None:
        for item in statuses:
            if item.get("name") == name:
                return dict(item)
    return dict(statuses[0]) if statuses else None


def _result(terminated: dict[str, Any] | None) -> TrialResult | None:
    message = (terminated or {}).get("message")
    if not message:
        return None
    try:
        return TrialResult.from_message(message)
    except (ValidationError, ValueError):
        # FallbackToLogsOnError puts log lines here for trainers that write no result.
        return None


def _disruption(status: dict[str, Any]) -> str | None:
    if status.get("reason") in DISRUPTION_REASONS:
        return str(status["reason"])
    for condition in status.get("conditions") or []:
        if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True":
            return str(condition.get("reason") or "DisruptionTarget")
    return None


def _gated(pod: Mapping[str, Any]) -> bool:
    gates = (pod.get("spec") or {}).get("schedulingGates") or []
    return any(gate.get("name") == KUEUE_GATE for gate in gates)


def _unschedulable(status: dict[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            reason = str(condition.get("reason") or "Unschedulable")
            message = str(condition.get("message") or "")
            return f"{reason}: {message}" if message else reason
    return None
