"""The Kueue stand-in: queued pods are gated and Jobs stay suspended until their GPUs fit the
queue's quota, admitted oldest first; quota comes back when a workload ends or is deleted."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster import Cluster
from .kueue import GATE, QUEUE_LABEL
from .test_jobs import job

SLEEP = "import time; time.sleep(1.5)"


@pytest.fixture
def kueue(cluster: Cluster) -> Iterator[Cluster]:
    cluster.set_kueue_quotas({"q": 1})
    yield cluster
    cluster.set_kueue_quotas({})


def gpu_pod(name: str, namespace: str, queue: str | None = "q") -> dict[str, Any]:
    labels = {QUEUE_LABEL: queue} if queue else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "ignored",
                    "command": ["python", "-c", SLEEP],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
    }


def gpu_job(name: str, namespace: str) -> dict[str, Any]:
    manifest = job(name, namespace, SLEEP, suspend=True)
    manifest["metadata"]["labels"][QUEUE_LABEL] = "q"
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    return manifest


def _pod(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found = cluster.get("pods", name, namespace)
    assert found is not None
    return found


def _gated(pod: dict[str, Any]) -> bool:
    return any(g["name"] == GATE for g in pod["spec"].get("schedulingGates") or [])


def test_queued_pods_are_gated_and_admitted_one_quota_at_a_time(
    kueue: Cluster, namespace: str
) -> None:
    kueue.create(gpu_pod("first", namespace))
    kueue.create(gpu_pod("second", namespace))
    kueue.wait_for_pod_phase(namespace, "first", "Running")
    second = _pod(kueue, namespace, "second")
    assert _gated(second) and "nodeName" not in second["spec"]
    conditions = {c["type"]: c for c in second["status"].get("conditions") or []}
    kueue.wait_for(
        lambda: any(
            c["type"] == "PodScheduled" and c.get("reason") == "SchedulingGated"
            for c in _pod(kueue, namespace, "second")["status"].get("conditions") or []
        ),
        message="second pod SchedulingGated",
    )
    assert "startTime" not in _pod(kueue, namespace, "second")["status"], conditions
    # The first one ends: its GPU goes to the second.
    kueue.wait_for_pod_phase(namespace, "first", "Succeeded", timeout=30)
    kueue.wait_for_pod_phase(namespace, "second", "Running", "Succeeded", timeout=30)
    assert not _gated(_pod(kueue, namespace, "second"))
    assert not _gated(_pod(kueue, namespace, "first"))


def test_suspended_jobs_are_admitted_in_creation_order_as_quota_frees(
    kueue: Cluster, namespace: str
) -> None:
    for name in ("j1", "j2"):
        kueue.create(gpu_job(name, namespace))

    def suspended(name: str) -> bool:
        found = kueue.get("jobs", name, namespace, group="batch")
        return bool(found and found["spec"].get("suspend"))

    kueue.wait_for(lambda: not suspended("j1"), message="j1 admitted")
    assert suspended("j2")
    # Deleting the admitted Job releases its quota.
    kueue.delete("jobs", "j1", namespace, group="batch")
    kueue.wait_for(lambda: not suspended("j2"), timeout=30, message="j2 admitted")


def test_a_workload_bigger_than_the_quota_or_for_an_unknown_queue_waits(
    kueue: Cluster, namespace: str
) -> None:
    big = gpu_pod("big", namespace)
    big["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "2"}}
    kueue.create(big)
    kueue.create(gpu_pod("elsewhere", namespace, queue="other"))
    kueue.create(gpu_pod("small", namespace))
    # StrictFIFO: the oldest workload of queue q blocks the younger one.
    time.sleep(1.0)  # time enough to admit "small", were it not behind "big"
    assert kueue.kueue.peak["q"] == 0
    for name in ("big", "elsewhere", "small"):
        assert _gated(_pod(kueue, namespace, name))
    kueue.delete("pods", "big", namespace, grace_period=0)
    kueue.wait_for_pod_phase(namespace, "small", "Running", "Succeeded", timeout=30)
    assert _gated(_pod(kueue, namespace, "elsewhere"))


def test_without_queues_kueue_is_off(cluster: Cluster, namespace: str) -> None:
    cluster.create(gpu_pod("plain", namespace))
    cluster.wait_for_pod_phase(namespace, "plain", "Running", "Succeeded")
    assert not _gated(_pod(cluster, namespace, "plain"))


TESTDATA = Path(__file__).resolve().parent / "testdata"


def _gpu_template(seconds: float) -> dict[str, Any]:
    return {
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "ignored",
                    "command": ["python", "-c", f"import time; time.sleep({seconds})"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        }
    }


def _queued(kind: str, name: str, namespace: str, seconds: float = 1.0) -> dict[str, Any]:
    """A two-pod JobSet or PyTorchJob of 1 GPU per pod, labelled for queue q, written WITHOUT
    suspend: Kueue's webhook suspends it."""
    meta = {"name": name, "namespace": namespace, "labels": {QUEUE_LABEL: "q"}}
    if kind == "jobsets":
        job = {"template": {"spec": {"backoffLimit": 0, "template": _gpu_template(seconds)}}}
        return {
            "apiVersion": "jobset.x-k8s.io/v1alpha2",
            "kind": "JobSet",
            "metadata": meta,
            "spec": {"replicatedJobs": [{"name": "w", "replicas": 2, **job}]},
        }
    replica = {"replicas": 1, "restartPolicy": "Never", "template": _gpu_template(1.0)}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": meta,
        "spec": {"pytorchReplicaSpecs": {"Master": replica, "Worker": replica}},
    }


@pytest.mark.parametrize("kind", ["jobsets", "pytorchjobs"])
def test_a_jobset_or_pytorchjob_is_suspended_and_admitted_as_one_unit(
    cluster: Cluster, namespace: str, kind: str
) -> None:
    crd = {"jobsets": "jobsets-crd.yaml", "pytorchjobs": "pytorchjobs-crd.yaml"}[kind]
    cluster.apply_crd(TESTDATA / crd)
    group, version = {
        "jobsets": ("jobset.x-k8s.io", "v1alpha2"),
        "pytorchjobs": ("kubeflow.org", "v1"),
    }[kind]
    cluster.set_kueue_quotas({"q": 2})
    try:
        for name in ("a", "b"):
            cluster.create(_queued(kind, name, namespace))

        def suspended(name: str) -> bool:
            found = cluster.get(kind, name, namespace, group=group, version=version)
            assert found is not None
            spec = found["spec"]
            return bool(spec.get("suspend") or (spec.get("runPolicy") or {}).get("suspend"))

        # Both pods of "a" fit the quota of 2 together: admitted; "b" waits for all of it.
        cluster.wait_for(lambda: not suspended("a"), message="a admitted")
        assert suspended("b")
        assert cluster.kueue.peak["q"] == 2
        cluster.wait_for(lambda: not suspended("b"), timeout=30, message="b admitted")
        assert cluster.kueue.peak["q"] == 2  # never both at once
    finally:
        cluster.set_kueue_quotas({})


def test_a_job_counts_the_pods_it_runs_at_once_not_more_than_its_completions(
    kueue: Cluster, namespace: str
) -> None:
    """Kueue's PodSet count is min(parallelism, completions): parallelism 2 with 1 completion
    runs one pod, whose 1 GPU fits the quota of 1."""
    manifest = gpu_job("capped", namespace)
    manifest["spec"].update({"parallelism": 2, "completions": 1})
    kueue.create(manifest)

    def admitted() -> bool:
        found = kueue.get("jobs", "capped", namespace, group="batch")
        return bool(found and found["spec"].get("suspend") is False)

    kueue.wait_for(admitted, timeout=30, message="capped admitted")
    assert kueue.kueue.peak["q"] == 1


def test_an_evicted_jobset_is_suspended_its_pods_stop_and_it_is_requeued(
    cluster: Cluster, namespace: str
) -> None:
    """As Kueue preempting a JobSet: suspend true again (the JobSet controller removes its
    Jobs, so its pods stop) and its quota released; while the preemptor holds the GPUs (here:
    the quota lowered) it waits, then, queued in its creation order, goes before the JobSet
    queued after it."""
    cluster.apply_crd(TESTDATA / "jobsets-crd.yaml")
    cluster.set_kueue_quotas({"q": 2})
    try:
        cluster.create(_queued("jobsets", "a", namespace, seconds=4))

        def suspended(name: str) -> bool:
            found = cluster.get("jobsets", name, namespace, group="jobset.x-k8s.io")
            assert found is not None
            return bool(found["spec"].get("suspend"))

        def pods(name: str) -> list[dict[str, Any]]:
            selector = f"jobset.sigs.k8s.io/jobset-name={name}"
            return cluster.list_objects("pods", namespace, label_selector=selector)

        cluster.wait_for(
            lambda: len([p for p in pods("a") if p["status"].get("phase") == "Running"]) == 2,
            timeout=30,
            message="a's two pods running",
        )
        cluster.create(_queued("jobsets", "b", namespace))
        cluster.set_kueue_quotas({"q": 1})  # the preemptor's share
        cluster.kueue_evict("jobsets", namespace, "a")
        assert suspended("a")
        with pytest.raises(ValueError, match="not an admitted queued workload"):
            cluster.kueue_evict("jobsets", namespace, "a")  # suspended already
        cluster.wait_for(lambda: not pods("a"), timeout=30, message="a's pods gone")
        assert suspended("a") and suspended("b")
        cluster.set_kueue_quotas({"q": 2})
        cluster.wait_for(lambda: not suspended("a"), timeout=30, message="a admitted again")
        assert suspended("b")  # behind a, which was created first
        cluster.wait_for(lambda: not suspended("b"), timeout=30, message="b admitted")
        assert cluster.kueue.peak["q"] == 2  # never both at once
    finally:
        cluster.set_kueue_quotas({})
