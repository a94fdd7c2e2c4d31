"""trainer.nodes: 2 through a JobSet, on a test cluster that serves the JobSet API (its CRD
from testdata/), with the real trainer (torchrun, gloo on CPU).

The operator discovers jobset.x-k8s.io/v1alpha2 (--nodes-workload auto), records JobSet on
the sweep, and creates the trial as a JobSet of one Indexed Job of 2 pods; the JobSet
stand-in (tests/cluster/training.py) makes its headless Service and gives the pods
`<trial>-node-0-<index>.<trial>` DNS names, which the kubelet stand-in resolves; torchrun's
static rendezvous joins the pods, and global rank 0 in pod 0 reports the one result. No
sweep Service (the Indexed Job path's) is made. Without the CRD, the same sweep runs as an
Indexed Job (tests/operator/test_several_nodes.py, whose cluster serves no JobSet).

With spec.queueName, Kueue (the stand-in, tests/cluster/kueue.py) holds the JobSet suspended
until both nodes' GPUs fit the queue's quota, then admits it as one unit; evicted (as on
preemption), the JobSet is suspended again and kubetune reruns the trial as a new attempt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.contract import ATTEMPT_ANNOTATION
from kubetune.builders.nodes import JOBSET_REPLICATED_JOB
from kubetune.operator.nodes_shape import NODES_WORKLOAD_ANNOTATION
from kubetune.operator.pod_state import QUEUE_PREEMPTED
from tests.cluster.cluster import Cluster

from .helpers import condition, history, trial_pods, wait_phase, wait_running, wait_status
from .runner import InProcessOperator, running_trainer_operator
from .test_several_nodes import nodes_sweep

pytestmark = pytest.mark.slow

TESTDATA = Path(__file__).resolve().parents[1] / "cluster" / "testdata"
INDEX = "batch.kubernetes.io/job-completion-index"


@pytest.fixture(scope="module")
def jobset_operator(crd: Cluster) -> Iterator[InProcessOperator]:
    crd.apply_crd(TESTDATA / "jobsets-crd.yaml")
    # Started after the CRD exists: kopf watches what the cluster serves.
    with running_trainer_operator(crd) as running:
        yield running


def _jobsets(cluster: Cluster, namespace: str, sweep: str) -> list[dict[str, Any]]:
    selector = f"{conventions.LABEL_SWEEP}={sweep}"
    return cluster.list_objects(
        "jobsets", namespace, group="jobset.x-k8s.io", label_selector=selector
    )


def _queued_sweep(name: str, namespace: str) -> dict[str, Any]:
    """Two nodes of 1 GPU each (the trial's 2 GPUs), queued in Kueue's gpu-queue."""
    manifest = nodes_sweep(name, namespace, 2)
    manifest["spec"]["queueName"] = "gpu-queue"
    manifest["spec"]["trainer"]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    return manifest


def _child_jobs(cluster: Cluster, namespace: str, jobset: str) -> list[dict[str, Any]]:
    selector = f"jobset.sigs.k8s.io/jobset-name={jobset}"
    return cluster.list_objects("jobs", namespace, group="batch", label_selector=selector)


def _assert_held_as_one_unit(cluster: Cluster, namespace: str, sweep: str, attempt: int) -> None:
    """The trial's JobSet waits for Kueue as real Kueue holds a JobSet: labelled for the
    queue, spec.suspend true (set by Kueue's webhook; the JobSet controller then makes no
    Jobs), its pods not labelled (Kueue's pod integration would gate each on its own); no
    node's pod started alone, and the sweep shows the trial queued."""

    def queued(current: dict[str, Any]) -> bool:
        return (current.get("trials") or {}).get("queued") == 1

    current = wait_status(cluster, namespace, sweep, queued, timeout=60, what="trial queued")
    [record] = history(current).values()
    assert record["s"] == "Queued", record
    started = condition(current, "TrialsStarted")
    assert "queued by Kueue" in started.get("message", ""), started
    time.sleep(3)  # time enough for a pod to start, were one not held back
    (jobset,) = _jobsets(cluster, namespace, sweep)
    assert jobset["metadata"]["annotations"][ATTEMPT_ANNOTATION] == str(attempt)
    assert jobset["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "gpu-queue"
    assert jobset["spec"]["suspend"] is True
    (rjob,) = jobset["spec"]["replicatedJobs"]
    pod_labels = rjob["template"]["spec"]["template"]["metadata"]["labels"]
    assert conventions.LABEL_KUEUE_QUEUE not in pod_labels
    assert _child_jobs(cluster, namespace, jobset["metadata"]["name"]) == []
    # Not one pod of this attempt, even one that started and was stopped again.
    pods = [
        p["metadata"]["name"]
        for p in trial_pods(cluster, namespace, sweep)
        if p["metadata"]["annotations"][ATTEMPT_ANNOTATION] == str(attempt)
    ]
    assert pods == []


def _assert_ran_on_both_nodes(cluster: Cluster, namespace: str, sweep: str, attempt: int) -> None:
    trial = conventions.trial_name(sweep, 0)
    (jobset,) = _jobsets(cluster, namespace, sweep)
    assert jobset["metadata"]["annotations"][ATTEMPT_ANNOTATION] == str(attempt)
    assert jobset["spec"]["suspend"] is False  # Kueue admitted it
    pods = [
        p
        for p in trial_pods(cluster, namespace, sweep)
        if p["metadata"]["annotations"][ATTEMPT_ANNOTATION] == str(attempt)
    ]
    pods.sort(key=lambda p: p["metadata"]["labels"][INDEX])
    assert [p["spec"]["hostname"] for p in pods] == [
        f"{trial}-{JOBSET_REPLICATED_JOB}-0-{i}" for i in range(2)
    ]
    # The sweep succeeds on the primary pod's result; the other node's pod may still be
    # finishing its last step when the status says so.
    for pod in pods:
        cluster.wait_for_pod_phase(namespace, pod["metadata"]["name"], "Succeeded")
    assert cluster.kubelet is not None
    log = cluster.kubelet.read_logs(namespace, pods[0]["metadata"]["name"])
    assert "succeeded after 4 steps" in log


def test_a_queued_two_node_jobset_trial_waits_as_one_unit_then_runs_on_both_nodes(
    jobset_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.set_kueue_quotas({"gpu-queue": 1})  # one node's GPU: not the trial's two
    try:
        crd.create(_queued_sweep("jsq", namespace))
        _assert_held_as_one_unit(crd, namespace, "jsq", attempt=1)
        assert crd.kueue.peak["gpu-queue"] == 0
        crd.set_kueue_quotas({"gpu-queue": 2})
        final = wait_phase(crd, namespace, "jsq", "Succeeded", "Failed", timeout=300)
        peak = crd.kueue.peak["gpu-queue"]
    finally:
        crd.set_kueue_quotas({})
    assert final["phase"] == "Succeeded", history(final)
    [record] = history(final).values()
    assert record["s"] == "Succeeded" and not record.get("rq"), record
    assert record["gs"] > 0  # GPU-hours: both nodes' GPUs
    assert final["best"]["trial"] == conventions.trial_name("jsq", 0)
    assert final["best"]["value"] == record["v"][0]
    assert peak == 2  # admitted as one unit of both nodes' GPUs
    sweep = crd.get("hyperparametersweeps", "jsq", namespace, group="kubetune.dev")
    assert sweep is not None
    assert sweep["metadata"]["annotations"][NODES_WORKLOAD_ANNOTATION] == "JobSet"
    _assert_ran_on_both_nodes(crd, namespace, "jsq", attempt=1)


def test_a_running_jobset_trial_that_kueue_evicts_is_queued_again_and_rerun(
    jobset_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    """Kueue preempts the running trial (the stand-in has no priorities: the test takes the
    GPUs away by lowering the quota, as the preempting workload would hold them, and evicts
    the JobSet): the JobSet is suspended again, its pods stop, and kubetune requeues the trial
    (a disruption, reason Preempted) as attempt 2, a new JobSet that waits for the quota."""
    crd.set_kueue_quotas({"gpu-queue": 2})
    try:
        crd.create(_queued_sweep("jse", namespace))
        wait_running(crd, namespace, "jse", 1, timeout=120)
        crd.set_kueue_quotas({"gpu-queue": 1})
        crd.kueue_evict("jobsets", namespace, conventions.trial_name("jse", 0))

        def requeued(current: dict[str, Any]) -> bool:
            return any(r.get("rq") for r in history(current).values())

        current = wait_status(crd, namespace, "jse", requeued, timeout=90, what="requeued")
        [record] = history(current).values()
        # Preempted whether kubetune sees the pods end while the JobSet is suspended (the
        # usual order here: runtime._by_name names their deletion Kueue's) or already gone.
        assert record["r"] == QUEUE_PREEMPTED, record
        print(f"evicted JobSet trial requeued: {record['r']}")
        _assert_held_as_one_unit(crd, namespace, "jse", attempt=2)
        crd.set_kueue_quotas({"gpu-queue": 2})
        final = wait_phase(crd, namespace, "jse", "Succeeded", "Failed", timeout=300)
    finally:
        crd.set_kueue_quotas({})
    assert final["phase"] == "Succeeded", history(final)
    [record] = history(final).values()
    assert record["s"] == "Succeeded" and record["rq"] == 1, record
    assert final["best"]["trial"] == conventions.trial_name("jse", 0)
    _assert_ran_on_both_nodes(crd, namespace, "jse", attempt=2)


def test_two_node_trial_runs_as_a_jobset_where_the_api_is_served(
    jobset_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.create(nodes_sweep("js", namespace, 2))
    final = wait_phase(crd, namespace, "js", "Succeeded", "Failed", timeout=300)
    assert final["phase"] == "Succeeded", history(final)
    [record] = history(final).values()
    assert record["s"] == "Succeeded" and not record.get("rq"), record
    assert record["v"][0] > 0

    trial = conventions.trial_name("js", 0)
    (jobset,) = _jobsets(crd, namespace, "js")
    assert jobset["metadata"]["name"] == trial
    assert jobset["spec"]["network"]["subdomain"] == trial

    # The sweep ends with its primary pod's result; the JobSet's own status may come later.
    def completed() -> bool:
        (jobset,) = _jobsets(crd, namespace, "js")
        conditions = (jobset.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Completed" for c in conditions)

    crd.wait_for(completed, timeout=30, message="the JobSet Completed")
    # The choice is recorded on the sweep: a restarted operator keeps it.
    sweep = crd.get("hyperparametersweeps", "js", namespace, group="kubetune.dev")
    assert sweep is not None
    assert sweep["metadata"]["annotations"][NODES_WORKLOAD_ANNOTATION] == "JobSet"

    pods = sorted(trial_pods(crd, namespace, "js"), key=lambda p: p["metadata"]["labels"][INDEX])
    assert [p["spec"]["hostname"] for p in pods] == [
        f"{trial}-{JOBSET_REPLICATED_JOB}-0-{i}" for i in range(2)
    ]
    assert all(p["spec"]["subdomain"] == trial for p in pods)
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    # Both pods rendezvoused at pod 0's JobSet DNS name; rank 0 alone reported.
    assert crd.kubelet is not None
    logs = [crd.kubelet.read_logs(namespace, p["metadata"]["name"]) for p in pods]
    assert "succeeded after 4 steps" in logs[0] and "succeeded after 4 steps" not in logs[1]
    # JobSet's own headless Service, owned by the JobSet; not the Indexed Job path's.
    service = crd.get("services", trial, namespace)
    assert service is not None and service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"][0]["kind"] == "JobSet"
    assert crd.get("services", conventions.rendezvous_service("js"), namespace) is None


def test_the_kind_recorded_on_a_sweep_wins_over_discovery(
    jobset_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    """As after an operator restart (or a JobSet installed meanwhile): a sweep that recorded
    Job keeps running its trials as Indexed Jobs although the JobSet API is served."""
    manifest = nodes_sweep("kept", namespace, 2)
    manifest["metadata"]["annotations"] = {NODES_WORKLOAD_ANNOTATION: "Job"}
    crd.create(manifest)
    final = wait_phase(crd, namespace, "kept", "Succeeded", "Failed", timeout=300)
    assert final["phase"] == "Succeeded", history(final)
    assert _jobsets(crd, namespace, "kept") == []
    selector = f"{conventions.LABEL_SWEEP}=kept"
    (job,) = crd.list_objects("jobs", namespace, group="batch", label_selector=selector)
    assert job["spec"]["completionMode"] == "Indexed"
    assert crd.get("services", conventions.rendezvous_service("kept"), namespace) is not None
