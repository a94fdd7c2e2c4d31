"""What a trial pod says about its trial: still going, finished, failed, or to be retried.

Pure functions over the pod as a dict (the shape the API returns).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from kubetune import conventions
from kubetune.builders.contract import ATTEMPT_ANNOTATION, CONTAINER_ANNOTATION
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
# Waiting reasons that will never resolve on their own.
FATAL_WAITING = frozenset(
    {
        "InvalidImageName",
        "ErrImageNeverPull",
        "ImagePullBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)
# Killed by a signal from outside (SIGTERM, SIGKILL) without an OOM: someone stopped it.
SIGNAL_EXITS = frozenset({conventions.EXIT_STOPPED, 137})

Kind = Literal["pending", "running", "succeeded", "failed", "disrupted", "terminating"]


@dataclass(frozen=True)
class PodView:
    """The parts of a trial pod the reconcile needs."""

    name: str
    uid: str
    attempt: int
    kind: Kind
    reason: str | None = None
    ip: str | None = None
    result: TrialResult | None = None
    started_at: str | None = None
    owner_uid: str | None = None


def attempt_of(pod: Mapping[str, Any]) -> int:
    raw = (pod.get("metadata", {}).get("annotations") or {}).get(ATTEMPT_ANNOTATION, "1")
    try:
        return int(raw)
    except ValueError:
        return 1


def view(pod: Mapping[str, Any]) -> PodView:
    """Classify one trial pod, judging by the container the builder marked as the trial's."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    container_name = (meta.get("annotations") or {}).get(CONTAINER_ANNOTATION)
    container = _container_status(status, container_name)
    terminated = (container.get("state") or {}).get("terminated") if container else None
    waiting = (container.get("state") or {}).get("waiting") if container else None
    result = _result(terminated)
    base = {
        "name": meta.get("name", ""),
        "uid": meta.get("uid", ""),
        "attempt": attempt_of(pod),
        "ip": status.get("podIP"),
        "result": result,
        "started_at": status.get("startTime"),
        "owner_uid": next(
            (ref.get("uid") for ref in meta.get("ownerReferences") or [] if ref.get("controller")),
            None,
        ),
    }
    phase = status.get("phase", "Pending")
    disruption = _disruption(status)

    if phase == "Succeeded":
        if result is not None and result.status == "failed":
            return PodView(kind="failed", reason=result.reason or "TrialFailed", **base)
        return PodView(kind="succeeded", **base)
    if phase == "Failed":
        if disruption:
            return PodView(kind="disrupted", reason=disruption, **base)
        return _failed(terminated, result, status, base)
    if phase == "Unknown":
        # The node stopped reporting: the pod's fate is unknowable, rerun it elsewhere.
        return PodView(kind="disrupted", reason=status.get("reason") or "NodeLost", **base)
    if meta.get("deletionTimestamp"):
        return PodView(kind="terminating", reason=disruption, **base)
    if waiting and waiting.get("reason") in FATAL_WAITING:
        message = waiting.get("message") or ""
        reason = f"{waiting['reason']}: {message}".rstrip(": ")
        return PodView(kind="failed", reason=reason, **base)
    if phase == "Running":
        return PodView(kind="running", **base)
    return PodView(kind="pending", reason=_pending_reason(status), **base)


def _failed(
    terminated: dict[str, Any] | None,
    result: TrialResult | None,
    status: dict[str, Any],
    base: dict[str, Any],
) -> PodView:
    pod_reason = status.get("reason")
    if pod_reason == "DeadlineExceeded":
        return PodView(
            kind="failed", reason="DeadlineExceeded: trial ran past trialTimeout", **base
        )
    term_reason = (terminated or {}).get("reason")
    exit_code = (terminated or {}).get("exitCode")
    if term_reason == "OOMKilled":
        return PodView(kind="failed", reason="OOMKilled", **base)
    stopped = result is not None and result.status == "stopped"
    if exit_code in SIGNAL_EXITS or stopped:
        return PodView(kind="disrupted", reason=f"Stopped (exit code {exit_code})", **base)
    if result is not None and result.reason:
        return PodView(kind="failed", reason=result.reason, **base)
    parts = [p for p in (pod_reason, term_reason) if p]
    if exit_code is not None:
        parts.append(f"exit code {exit_code}")
    return PodView(kind="failed", reason=", ".join(parts) or "Failed", **base)


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


def _pending_reason(status: dict[str, Any]) -> str | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return str(condition.get("reason") or "Unschedulable")
    return None
