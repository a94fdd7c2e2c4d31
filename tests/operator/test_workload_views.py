"""A multi-pod trial workload seen by the operator: only its primary pod is a trial pod, a
failed workload ends its trial (even when the controller took the primary pod with it),
a primary pod's own successful ending stands, and a pod deleted because Kueue suspended
its workload again is named Preempted."""

import dataclasses
from typing import Any

import pytest

from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    CONTAINER_ANNOTATION,
    PRIMARY_ANNOTATION,
    WORKLOAD_ANNOTATION,
)
from kubetune.operator.pod_state import POD_DELETED, QUEUE_PREEMPTED, is_primary, job_view, view
from kubetune.operator.runtime import _by_name
from kubetune.trial_ending import judge

MASTER = "training.kubeflow.org/replica-index=0,training.kubeflow.org/replica-type=master"


def _pod(role: str, phase: str = "Running", **terminated: Any) -> dict[str, Any]:
    state = {"terminated": terminated} if terminated else {"running": {}}
    return {
        "metadata": {
            "name": f"t0-{role}-0",
            "uid": f"{role}-uid",
            "labels": {
                "kubetune.dev/trial": "s-t0000",
                "training.kubeflow.org/replica-type": role,
                "training.kubeflow.org/replica-index": "0",
            },
            "annotations": {
                ATTEMPT_ANNOTATION: "1",
                CONTAINER_ANNOTATION: "pytorch",
                PRIMARY_ANNOTATION: MASTER,
                WORKLOAD_ANNOTATION: "kubeflow.org/v1/PyTorchJob",
            },
            "ownerReferences": [
                {
                    "apiVersion": "kubeflow.org/v1",
                    "kind": "PyTorchJob",
                    "name": "s-t0000",
                    "uid": "ptj-uid",
                    "controller": True,
                }
            ],
        },
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "pytorch", "state": state}],
        },
    }


def _pytorchjob(*conditions: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {
            "name": "s-t0000",
            "uid": "ptj-uid",
            "labels": {"kubetune.dev/trial": "s-t0000"},
            "annotations": {ATTEMPT_ANNOTATION: "1"},
        },
        "spec": {"pytorchReplicaSpecs": {}},
        "status": {"conditions": [{**c, "status": "True"} for c in conditions]},
    }


def test_only_the_primary_pod_is_a_trial_pod_and_the_trial_is_the_workload() -> None:
    assert is_primary(_pod("master"))
    assert not is_primary(_pod("worker"))
    seen = view(_pod("master"))
    assert (seen.name, seen.uid, seen.pod_name, seen.job) == (
        "s-t0000",
        "ptj-uid",
        "t0-master-0",
        True,
    )
    assert seen.workload == "kubeflow.org/v1/PyTorchJob"
    plain = _pod("master")
    del plain["metadata"]["annotations"][PRIMARY_ANNOTATION]
    assert is_primary(plain)  # a Job's pod (one pod) carries no selector


def test_a_running_workload_says_nothing_and_a_failed_one_ends_the_trial() -> None:
    assert job_view(_pytorchjob({"type": "Running"})) is None
    assert job_view(_pytorchjob({"type": "Succeeded"})) is None
    failed = job_view(
        _pytorchjob(
            {"type": "Failed", "reason": "PyTorchJobFailed", "message": "worker 0 exited 1"}
        )
    )
    assert failed is not None and failed.kind == "ended" and failed.ending is not None
    assert failed.ending.workload_failed == "PyTorchJobFailed: worker 0 exited 1"
    assert failed.uid == "ptj-uid"


def test_a_failed_workload_fails_the_trial_whatever_its_primary_pod_shows() -> None:
    failed = job_view(_pytorchjob({"type": "Failed", "reason": "PyTorchJobFailed"}))
    assert failed is not None
    # The master still runs: the workload's ending stands.
    (merged,) = _by_name([failed, view(_pod("master"))]).values()
    assert merged.kind == "ended" and merged.ending is not None
    assert judge(merged.ending, ["loss"]).reason == "WorkloadFailed: PyTorchJobFailed"
    # The controller deleted the master with it: no disruption (no requeue), a failure.
    gone = _pod("master", "Failed", exitCode=143, reason="Error")
    gone["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    (merged,) = _by_name([view(gone), failed]).values()
    assert merged.ending is not None and merged.ending.disruption is not None
    verdict = judge(merged.ending, ["loss"])
    assert (verdict.kind, verdict.reason) == ("fail", "WorkloadFailed: PyTorchJobFailed")


def test_a_master_that_finished_its_work_completes_even_if_the_workload_failed() -> None:
    message = '{"status": "succeeded", "metrics": {"loss": 0.5}}'
    done = view(_pod("master", "Succeeded", exitCode=0, message=message))
    failed = job_view(_pytorchjob({"type": "Failed", "reason": "PyTorchJobFailed"}))
    assert failed is not None
    (merged,) = _by_name([failed, done]).values()
    assert merged.ending is not None
    verdict = judge(merged.ending, ["loss"])
    assert (verdict.kind, verdict.values) == ("complete", [0.5])


def _suspended(kind: str) -> dict[str, Any]:
    """A trial workload Kueue suspended again after admitting it (preempted it)."""
    api_version = {"Job": "batch/v1", "JobSet": "jobset.x-k8s.io/v1alpha2"}[kind]
    template = {"spec": {"containers": [{"name": "trial"}]}}
    spec: dict[str, Any] = (
        {"template": template}
        if kind == "Job"
        else {"replicatedJobs": [{"name": "node", "template": {"spec": {"template": template}}}]}
    )
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": "s-t0000",
            "uid": f"{kind}-uid",
            "labels": {"kubetune.dev/trial": "s-t0000"},
            "annotations": {ATTEMPT_ANNOTATION: "1"},
        },
        "spec": {**spec, "suspend": True},
        "status": {},
    }


def _workload_pod(kind: str, phase: str, *, deleting: bool, **terminated: Any) -> dict[str, Any]:
    """The (primary) pod of that workload: a Job's own, or a JobSet's through its child Job."""
    state = {"terminated": terminated} if terminated else {"running": {}}
    annotations = {ATTEMPT_ANNOTATION: "1", CONTAINER_ANNOTATION: "trial"}
    if kind == "JobSet":
        annotations[WORKLOAD_ANNOTATION] = "jobset.x-k8s.io/v1alpha2/JobSet"
    meta: dict[str, Any] = {
        "name": "s-t0000-abcde",
        "uid": "pod-uid",
        "labels": {"kubetune.dev/trial": "s-t0000"},
        "annotations": annotations,
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": "s-t0000" if kind == "Job" else "s-t0000-node-0",
                "uid": "Job-uid" if kind == "Job" else "child-job-uid",
                "controller": True,
            }
        ],
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "status": {"phase": phase, "containerStatuses": [{"name": "trial", "state": state}]},
    }


@pytest.mark.parametrize("kind", ["Job", "JobSet"])
def test_a_pod_deleted_because_kueue_suspended_its_workload_again_is_preempted(kind: str) -> None:
    suspended = job_view(_suspended(kind))
    assert suspended is not None and suspended.kind == "queued"
    # The workload controller stops the pod (SIGTERM): deleted, no reason of its own.
    gone = view(_workload_pod(kind, "Failed", deleting=True, exitCode=143, reason="Error"))
    assert gone.ending is not None and gone.ending.disruption == POD_DELETED
    for order in ([gone, suspended], [suspended, gone]):
        (merged,) = _by_name(order).values()
        assert merged.kind == "ended" and merged.ending is not None
        verdict = judge(merged.ending, ["loss"])
        assert (verdict.kind, verdict.reason, verdict.disruption) == (
            "requeue",
            "Preempted: Kueue suspended the trial's workload",
            True,
        )
        assert merged.uid == f"{kind}-uid"  # the delete stops the workload
    # Still going away: the pod's view stands (the trial waits for its ending).
    stopping = view(_workload_pod(kind, "Running", deleting=True))
    (merged,) = _by_name([suspended, stopping]).values()
    assert merged.kind == "terminating"
    # Without a suspended workload, a deleted pod is someone's delete, as before.
    (alone,) = _by_name([gone]).values()
    assert alone.ending is not None
    assert judge(alone.ending, ["loss"]).reason == POD_DELETED


@pytest.mark.parametrize("kind", ["Job", "JobSet"])
def test_a_pod_that_ended_on_its_own_keeps_its_verdict_when_its_workload_is_suspended(
    kind: str,
) -> None:
    suspended = job_view(_suspended(kind))
    assert suspended is not None
    message = '{"status": "succeeded", "metrics": {"loss": 0.5}}'
    done = view(_workload_pod(kind, "Succeeded", deleting=True, exitCode=0, message=message))
    (merged,) = _by_name([suspended, done]).values()
    assert merged.ending is not None
    verdict = judge(merged.ending, ["loss"])
    assert (verdict.kind, verdict.values) == ("complete", [0.5])
    failed = view(_workload_pod(kind, "Failed", deleting=False, exitCode=1, reason="Error"))
    (merged,) = _by_name([failed, suspended]).values()
    assert merged.ending is not None
    verdict = judge(merged.ending, ["loss"])
    assert (verdict.kind, verdict.disruption) == ("fail", False)
    assert not (verdict.reason or "").startswith("Preempted")
    # A disruption the cluster named (evicted from its node) stays that disruption.
    evicted = _workload_pod(kind, "Failed", deleting=True, exitCode=143)
    evicted["status"]["reason"] = "Evicted"
    (merged,) = _by_name([view(evicted), suspended]).values()
    assert merged.ending is not None
    assert judge(merged.ending, ["loss"]).reason == "Evicted"


@pytest.mark.parametrize("kind", ["Job", "JobSet"])
def test_preemption_reads_the_deletion_fact_not_the_reasons_wording(kind: str) -> None:
    """Whether a pod of a suspended workload ended only by its deletion is TrialEnding.deleted,
    never a match on the PodDeleted text: reworded, a bare deletion is still Preempted."""
    suspended = job_view(_suspended(kind))
    assert suspended is not None
    gone = view(_workload_pod(kind, "Failed", deleting=True, exitCode=143, reason="Error"))
    assert gone.ending is not None and gone.ending.deleted
    # The same deletion, its reason worded otherwise (as a changed vocabulary would).
    reworded = dataclasses.replace(
        gone, ending=dataclasses.replace(gone.ending, disruption="Deleted: reworded")
    )
    (merged,) = _by_name([reworded, suspended]).values()
    assert merged.ending is not None
    verdict = judge(merged.ending, ["loss"])
    assert (verdict.kind, verdict.reason, verdict.disruption) == (
        "requeue",
        QUEUE_PREEMPTED,
        True,
    )
    assert merged.uid == f"{kind}-uid"


@pytest.mark.parametrize("kind", ["Job", "JobSet"])
def test_a_reason_the_cluster_named_stays_even_when_worded_like_a_deletion(kind: str) -> None:
    """A DisruptionTarget condition is the cluster's text: whatever it says (here the very
    words of kubetune's PodDeleted reason), the pod did not end by a bare deletion, so it is
    not renamed Preempted."""
    suspended = job_view(_suspended(kind))
    assert suspended is not None
    named = _workload_pod(kind, "Failed", deleting=True, exitCode=143)
    named["status"]["conditions"] = [
        {"type": "DisruptionTarget", "status": "True", "reason": POD_DELETED}
    ]
    seen = view(named)
    assert seen.ending is not None and not seen.ending.deleted
    assert seen.ending.disruption == POD_DELETED  # the same words as a bare deletion
    for order in ([seen, suspended], [suspended, seen]):
        (merged,) = _by_name(order).values()
        assert merged.ending is not None
        verdict = judge(merged.ending, ["loss"])
        assert (verdict.kind, verdict.reason, verdict.disruption) == (
            "requeue",
            POD_DELETED,
            True,
        )
