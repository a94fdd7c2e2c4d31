"""The prefetch gate: a sweep with trainer.cache and a hub model starts no trial until its
prefetch pod has filled the cache (condition ModelCached True).

Pure and level-triggered: from the sweep's ModelCached condition and its prefetch pod as
observed now, `prefetch_step` says whether trials may start and what to do (create or
delete the pod, set the condition, fail the sweep). The condition is the record: a
restarted operator that finds ModelCached True (for the same repositories) never
prefetches again; one that finds it False with PrefetchFailed for the current spec
generation keeps the sweep failed. An edit of the spec retries a failed prefetch.
"""

import json
from dataclasses import dataclass
from typing import Any

from kubetune.builders.errors import BuildError
from kubetune.builders.prefetch import build_prefetch_pod
from kubetune.operator.effects import Event
from kubetune.operator.pod_state import PERMANENT_WAITING, PodView
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SweepSpec
from kubetune.spec.hub import RepoType, cluster_prefetch, repos_key
from kubetune.spec.status import Condition
from kubetune.text import excerpt

MODEL_CACHED = "ModelCached"
REASON_PREFETCHED = "Prefetched"
REASON_PREFETCHING = "Prefetching"
REASON_FAILED = "PrefetchFailed"
_TIMED_OUT = (
    "the download did not finish within trainer.cache.prefetchTimeout (the prefetch pod's "
    "activeDeadlineSeconds): raise it, or check the hub's reachability and speed"
)


@dataclass(frozen=True)
class PrefetchStep:
    """What one pass does about the prefetch; `ready`: trials may start."""

    ready: bool
    create: bool = False
    delete: tuple[str, str] | None = None  # (pod name, uid)
    condition: tuple[bool, str, str] | None = None  # (status, reason, message)
    failure: str | None = None  # the sweep fails with this message
    event: Event | None = None


def prefetch_step(
    repos: list[tuple[str, RepoType]],
    condition: Condition | None,
    pod: PodView | None,
    generation: int,
) -> PrefetchStep:
    """The pass's step for a sweep whose trials read `repos` (empty: no prefetch); the
    prefetch pod carries the spec generation it was made for as its attempt."""
    if not repos:
        return PrefetchStep(ready=True)
    key = repos_key(repos)
    if condition is not None and condition.status == "True" and _for(condition, key):
        return PrefetchStep(ready=True)
    if (
        condition is not None
        and condition.reason == REASON_FAILED
        and (condition.observed_generation or 0) == generation
    ):
        return PrefetchStep(ready=False, failure=f"{REASON_FAILED}: {condition.message}")
    waiting = (False, REASON_PREFETCHING, f"{key}: downloading into trainer.cache")
    if pod is None:
        return PrefetchStep(ready=False, create=True, condition=waiting)
    if pod.kind == "terminating":
        return PrefetchStep(ready=False, condition=waiting)
    if pod.kind != "ended":
        if pod.waiting is not None and pod.waiting[0] in PERMANENT_WAITING:
            reason, message = pod.waiting
            return _failed(key, f"the prefetch pod cannot start: {reason}: {excerpt(message)}")
        if pod.waiting is not None or pod.unschedulable is not None:
            why = pod.unschedulable or ""
            if pod.waiting is not None:
                why = f"{pod.waiting[0]}: {excerpt(pod.waiting[1])}"
            return PrefetchStep(
                ready=False, condition=(False, REASON_PREFETCHING, f"{key}: waiting: {why}")
            )
        return PrefetchStep(ready=False, condition=waiting)
    ending = pod.ending
    result = _result(pod.message)
    succeeded = (
        ending is not None
        and ending.exit_code == 0
        and ending.disruption is None
        and result.get("status") == "succeeded"
    )
    if succeeded and pod.attempt == generation:
        return PrefetchStep(
            ready=True,
            condition=(True, REASON_PREFETCHED, f"{key}: {_size(result, pod.finished_at)}"),
            event=Event("Normal", REASON_PREFETCHED, f"{key}: {_size(result, pod.finished_at)}"),
        )
    if pod.attempt == generation and ending is not None and ending.stop == "timeout":
        return _failed(key, _TIMED_OUT)
    if pod.attempt != generation or (ending is not None and ending.disruption is not None):
        # A prefetch of an earlier spec (the edit may have fixed what failed), or one the
        # cluster took away: run it again.
        return PrefetchStep(ready=False, delete=(pod.name, pod.uid), condition=waiting)
    return _failed(key, _reason(result, pod))


def plan_prefetch(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    condition: Condition | None,
    pod: PodView | None,
    generation: int,
    *,
    default_image: str | None,
    policy: PodPolicy,
) -> tuple[PrefetchStep, dict[str, Any] | None]:
    """The pass's step for the sweep (its ModelCached `condition` and prefetch `pod` as
    observed), and the prefetch pod's manifest when the step creates one."""
    repos = cluster_prefetch(spec.trainer)
    step = prefetch_step(repos, condition, pod, generation)
    if not step.create:
        return step, None
    try:
        manifest = build_prefetch_pod(
            sweep, spec, generation, default_image=default_image, policy=policy
        )
    except BuildError as error:
        return prefetch_refused(repos, str(error)), None
    return step, manifest


def prefetch_refused(repos: list[tuple[str, RepoType]], problem: str) -> PrefetchStep:
    """The step when the prefetch pod cannot be built (the trainer block or the pod policy)."""
    return _failed(repos_key(repos), problem)


def _for(condition: Condition, key: str) -> bool:
    """Whether the cache was filled for these repositories (an edit may name others)."""
    return condition.message == key or condition.message.startswith(f"{key}: ")


def _failed(key: str, reason: str) -> PrefetchStep:
    message = f"{key}: {reason}"
    return PrefetchStep(
        ready=False,
        condition=(False, REASON_FAILED, message),
        failure=f"{REASON_FAILED}: {message}",
        event=Event("Warning", REASON_FAILED, message),
    )


def _result(message: str | None) -> dict[str, Any]:
    """The prefetch's JSON line; {} when the message is none (e.g. a log tail instead)."""
    if not message:
        return {}
    try:
        parsed = json.loads(message)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _reason(result: dict[str, Any], pod: PodView) -> str:
    """Why the prefetch failed, in the hub's words where it said (foreign text: excerpted)."""
    said = result.get("reason")
    if isinstance(said, str) and said:
        return excerpt(said, 300)
    ending = pod.ending
    code = ending.exit_code if ending is not None else None
    detail = excerpt(ending.detail) if ending is not None and ending.detail else ""
    tail = excerpt(pod.message or "")
    parts = [f"exit {code}" if code is not None else "no exit status", detail, tail]
    return "prefetch failed: " + ", ".join(part for part in parts if part)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 else None


def _size(result: dict[str, Any], finished_at: str | None) -> str:
    """e.g. `1.20 GB (0.30 GB downloaded) in 41.2s, at 2026-01-01T00:00:00Z`."""
    total, fetched, seconds = (
        _number(result.get(k)) for k in ("bytes", "downloadedBytes", "seconds")
    )
    words = []
    if total is not None:
        words.append(_bytes(total))
        if fetched is not None:
            words.append(f"({_bytes(fetched)} downloaded)")
    if seconds is not None:
        words.append(f"in {seconds:.1f}s")
    text = " ".join(words) or "cached"
    return f"{text}, at {excerpt(finished_at, 40)}" if finished_at else text


def _bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.2f} {unit}"
        count /= 1000
    return f"{count:.2f} TB"
