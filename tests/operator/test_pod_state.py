"""Classifying trial pods: what each pod state means for its trial."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune.operator.pod_state import view


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


def test_succeeded_pod_carries_its_result() -> None:
    text = message(metrics={"eval_loss": 0.5}, steps=10)
    seen = view(pod("Succeeded", terminated={"exitCode": 0, "message": text}))
    assert seen.kind == "succeeded"
    assert seen.result is not None and seen.result.metrics == {"eval_loss": 0.5}


def test_judged_by_the_marked_container_not_the_first() -> None:
    seen = view(pod("Failed", terminated={"exitCode": 1, "reason": "Error"}, container="main"))
    assert seen.kind == "failed" and seen.reason == "Error, exit code 1"


@pytest.mark.parametrize(
    ("kwargs", "kind", "reason"),
    [
        ({"terminated": {"exitCode": 137, "reason": "OOMKilled"}}, "failed", "OOMKilled"),
        ({"reason": "Evicted", "terminated": {"exitCode": 137}}, "disrupted", "Evicted"),
        ({"reason": "NodeLost"}, "disrupted", "NodeLost"),
        ({"reason": "DeadlineExceeded"}, "failed", "DeadlineExceeded: trial ran past trialTimeout"),
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
            "disrupted",
            "PreemptionByScheduler",
        ),
        ({"terminated": {"exitCode": 143}}, "disrupted", "Stopped (exit code 143)"),
        (
            {
                "terminated": {
                    "exitCode": 1,
                    "message": json.dumps({"status": "failed", "reason": "loss is NaN"}),
                }
            },
            "failed",
            "loss is NaN",
        ),
        ({"terminated": {"exitCode": 2, "message": "Traceback ..."}}, "failed", "exit code 2"),
    ],
)
def test_failed_pods(kwargs: dict[str, Any], kind: str, reason: str) -> None:
    seen = view(pod("Failed", **kwargs))
    assert seen.kind == kind
    assert seen.reason == reason


def test_exit_zero_with_failed_result_is_a_failure() -> None:
    text = json.dumps({"status": "failed", "reason": "diverged"})
    seen = view(pod("Succeeded", terminated={"exitCode": 0, "message": text}))
    assert (seen.kind, seen.reason) == ("failed", "diverged")


def test_unknown_phase_means_node_lost() -> None:
    assert view(pod("Unknown")).kind == "disrupted"
    assert view(pod("Unknown")).reason == "NodeLost"


def test_waiting_that_never_resolves_is_a_failure() -> None:
    seen = view(pod("Pending", waiting={"reason": "ImagePullBackOff", "message": "no such image"}))
    assert (seen.kind, seen.reason) == ("failed", "ImagePullBackOff: no such image")
    assert view(pod("Pending", waiting={"reason": "ContainerCreating"})).kind == "pending"


def test_unschedulable_pod_waits_with_a_reason() -> None:
    seen = view(
        pod(
            "Pending",
            conditions=[{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}],
        )
    )
    assert (seen.kind, seen.reason) == ("pending", "Unschedulable")


def test_terminating_and_attempt() -> None:
    seen = view(pod("Running", deleting=True, attempt="3"))
    assert (seen.kind, seen.attempt) == ("terminating", 3)
