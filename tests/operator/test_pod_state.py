"""Classifying trial pods: what each pod state means for its trial."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune.operator.pod_state import PodView, job_view, view
from kubetune.trial_ending import judge


def pod(
    phase: str,
    *,
    terminated: dict[str, Any] | None = None,
    waiting: dict[str, Any] | None = None,
    reason: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    container: str = "trial",
    attempt: str = "1",
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {}}
    if terminated is not None:
        state = {"terminated": terminated}
    elif waiting is not None:
        state = {"waiting": waiting}
    status: dict[str, Any] = {
        "phase": phase,
        "podIP": "10.0.0.7",
        "startTime": "2026-01-01T00:00:00Z",
        "containerStatuses": [
            {"name": "sidecar", "state": {"running": {}}},
            {"name": container, "state": state},
        ],
    }
    if reason:
        status["reason"] = reason
    if conditions:
        status["conditions"] = conditions
    meta: dict[str, Any] = {
        "name": "s-t0001",
        "uid": "u1",
        "annotations": {"kubetune.dev/attempt": attempt, "kubetune.dev/container": container},
        "ownerReferences": [{"uid": "sweep-uid", "controller": True}],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    return {"metadata": meta, "status": status}


def message(**fields: Any) -> str:
    return json.dumps({"status": "succeeded", **fields})


def test_running_pod() -> None:
    seen = view(pod("Running"))
    assert (seen.kind, seen.ip, seen.attempt, seen.owner_uid) == (
        "running",
        "10.0.0.7",
        1,
        "sweep-uid",
    )


def judged(seen: PodView) -> tuple[str, str]:
    assert seen.kind == "ended" and seen.ending is not None
    verdict = judge(seen.ending, ["eval_loss"])
    return verdict.kind, verdict.reason or ""


def test_succeeded_pod_carries_its_result() -> None:
    text = message(metrics={"eval_loss": 0.5}, steps=10)
    seen = view(pod("Succeeded", terminated={"exitCode": 0, "message": text}))
    assert seen.kind == "ended" and not seen.live
    assert seen.result is not None and seen.result.metrics == {"eval_loss": 0.5}
    assert judged(seen) == ("complete", "")


def test_judged_by_the_marked_container_not_the_first() -> None:
    seen = view(pod("Failed", terminated={"exitCode": 1, "reason": "Error"}, container="main"))
    assert judged(seen) == ("fail", "Error: exit code 1: Error")


@pytest.mark.parametrize(
    ("kwargs", "kind", "reason"),
    [
        (
            {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
            "fail",
            "OOMKilled",
        ),
        ({"reason": "Evicted", "terminated": {"exitCode": 137}}, "requeue", "Evicted"),
        ({"reason": "NodeLost"}, "requeue", "NodeLost"),
        ({"reason": "DeadlineExceeded"}, "fail", "Timeout: ran past budget.trialTimeout"),
        (
            {
                "conditions": [
                    {
                        "type": "DisruptionTarget",
                        "status": "True",
                        "reason": "PreemptionByScheduler",
                    }
                ],
                "terminated": {"exitCode": 143},
            },
            "requeue",
            "PreemptionByScheduler",
        ),
        (
            {"terminated": {"exitCode": 143}},
            "fail",
            "Stopped: SIGTERM from outside kubetune (exit code 143)",
        ),
        (
            {
                "terminated": {
                    "exitCode": 1,
                    "message": json.dumps({"status": "failed", "reason": "loss is NaN"}),
                }
            },
            "fail",
            "TrialFailed: loss is NaN",
        ),
        ({"terminated": {"exitCode": 2, "message": "Traceback ..."}}, "fail", "Error: exit code 2"),
    ],
)
def test_failed_pods(kwargs: dict[str, Any], kind: str, reason: str) -> None:
    assert judged(view(pod("Failed", **kwargs))) == (kind, reason)


def test_exit_zero_with_failed_result_is_a_failure() -> None:
    text = json.dumps({"status": "failed", "reason": "diverged"})
    seen = view(pod("Succeeded", terminated={"exitCode": 0, "message": text}))
    assert judged(seen) == ("fail", "TrialFailed: diverged")


def test_unknown_phase_means_node_lost() -> None:
    assert judged(view(pod("Unknown"))) == ("requeue", "NodeLost")


def test_a_pod_deleted_from_outside_is_a_disruption() -> None:
    seen = view(pod("Failed", terminated={"exitCode": 143}, deleting=True))
    assert judged(seen) == ("requeue", "PodDeleted: the trial pod was deleted")
    assert seen.ending is not None and seen.ending.deleted


@pytest.mark.parametrize(
    "seen",
    [
        # It ended before anyone deleted it.
        pod("Failed", terminated={"exitCode": 143}),
        # It succeeded, then was deleted (kubetune deletes every ended trial pod).
        pod("Succeeded", terminated={"exitCode": 0, "message": message(loss=0.5)}, deleting=True),
        # The cluster named why: the deletion is not all there is to it.
        pod("Failed", terminated={"exitCode": 143}, reason="Evicted", deleting=True),
        pod(
            "Failed",
            terminated={"exitCode": 143},
            conditions=[{"type": "DisruptionTarget", "status": "True", "reason": "X"}],
            deleting=True,
        ),
        pod("Unknown", deleting=True),
    ],
)
def test_only_a_bare_deletion_is_marked_deleted(seen: dict[str, Any]) -> None:
    ended = view(seen)
    assert ended.kind == "ended" and ended.ending is not None
    assert not ended.ending.deleted


def test_start_problems_are_reported_not_judged() -> None:
    seen = view(pod("Pending", waiting={"reason": "ImagePullBackOff", "message": "no such image"}))
    assert (seen.kind, seen.waiting) == ("pending", ("ImagePullBackOff", "no such image"))
    assert view(pod("Pending", waiting={"reason": "ContainerCreating"})).waiting is None


def test_unschedulable_pod_waits_with_the_schedulers_message() -> None:
    seen = view(
        pod(
            "Pending",
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                }
            ],
        )
    )
    assert (seen.kind, seen.unschedulable) == (
        "pending",
        "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    )


def test_terminating_and_attempt() -> None:
    seen = view(pod("Running", deleting=True, attempt="3"))
    assert (seen.kind, seen.attempt, seen.live) == ("terminating", 3, False)


def test_gpus_and_running_time_of_a_trial_pod() -> None:
    from kubetune.operator.pod_state import gpus_of

    spec: dict[str, list[dict[str, Any]]] = {
        "containers": [
            {"name": "trial", "resources": {"limits": {"nvidia.com/gpu": "2"}}},
            {"name": "side", "resources": {"requests": {"nvidia.com/gpu": 1}}},
            {"name": "cpu"},
        ],
        "initContainers": [{"name": "init", "resources": {"limits": {"nvidia.com/gpu": 4}}}],
    }
    assert gpus_of({"spec": spec}) == 4  # the largest init container outweighs the sum (3)
    assert gpus_of({"spec": {"containers": spec["containers"]}}) == 3
    assert (
        gpus_of({"spec": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": "x"}}}]}}) == 0
    )

    ended = pod("Succeeded", terminated={"exitCode": 0, "finishedAt": "2026-01-01T01:00:00Z"})
    ended["spec"] = {"containers": [spec["containers"][0]]}
    ended["status"]["startTime"] = "2026-01-01T00:30:00Z"
    seen = view(ended)
    assert seen.gpus == 2 and seen.gpu_seconds(now=1e12) == 2 * 1800
    # Still running (or its node stopped reporting): counted up to now.
    live = pod("Running")
    live["spec"] = ended["spec"]
    live["status"]["startTime"] = "2026-01-01T00:30:00Z"
    assert view(live).gpu_seconds(now=view_time("2026-01-01T00:31:00Z")) == 2 * 60
    # Never ran its container: no running time.
    never = pod("Failed", waiting={"reason": "ImagePullBackOff"}, reason="Evicted")
    never["spec"] = ended["spec"]
    never["status"]["startTime"] = "2026-01-01T00:30:00Z"
    assert view(never).gpu_seconds(now=1e12) == 0


def view_time(stamp: str) -> float:
    from kubetune.operator.pod_state import parse_time

    parsed = parse_time(stamp)
    assert parsed is not None
    return parsed


# ---- Kueue (spec.queueName): a trial not admitted yet is queued -----------------------------


def _gated(**extra: Any) -> dict[str, Any]:
    gated = pod("Pending", conditions=[_scheduling_gated()])
    gated["status"].pop("startTime")
    gated["status"]["containerStatuses"] = []
    gated["spec"] = {"schedulingGates": [{"name": "kueue.x-k8s.io/admission"}], **extra}
    return gated


def _scheduling_gated() -> dict[str, Any]:
    return {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}


def test_a_pod_gated_by_kueue_is_queued_not_pending() -> None:
    seen = view(_gated())
    assert seen.kind == "queued"
    assert seen.started_at is None and seen.unschedulable is None


def test_another_scheduling_gate_is_only_pending() -> None:
    other = _gated()
    other["spec"]["schedulingGates"] = [{"name": "example.com/quota"}]
    assert view(other).kind == "pending"


def test_an_admitted_pod_is_pending_then_running() -> None:
    admitted = _gated()
    admitted["spec"]["schedulingGates"] = []
    assert view(admitted).kind == "pending"
    assert view(pod("Running")).kind == "running"


def _job(suspend: bool, **status: Any) -> dict[str, Any]:
    gpu = {"limits": {"nvidia.com/gpu": "1"}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "s-t0002",
            "uid": "job-uid",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kubetune.dev/trial": "s-t0002", "kueue.x-k8s.io/queue-name": "q"},
            "annotations": {"kubetune.dev/attempt": "2"},
            "ownerReferences": [{"uid": "sweep-uid", "controller": True}],
        },
        "spec": {
            "suspend": suspend,
            "template": {"spec": {"containers": [{"name": "trial", "resources": gpu}]}},
        },
        "status": status,
    }


def test_a_suspended_job_is_a_queued_trial() -> None:
    seen = job_view(_job(True))
    assert seen is not None
    assert (seen.kind, seen.name, seen.uid, seen.attempt, seen.job) == (
        "queued",
        "s-t0002",
        "job-uid",
        2,
        True,
    )
    assert (seen.owner_uid, seen.gpus, seen.pod_name, seen.live) == ("sweep-uid", 1, None, False)


def test_an_admitted_finished_or_deleted_job_says_nothing_itself() -> None:
    assert job_view(_job(False)) is None
    done = [{"type": "Complete", "status": "True"}]
    assert job_view(_job(True, conditions=done)) is None
    deleting = _job(True)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    assert job_view(deleting) is None
