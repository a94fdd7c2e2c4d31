"""trainer.nodes: 2 on the test cluster, with the real trainer (torchrun, gloo on CPU).

This cluster serves no JobSet API, so the operator (--nodes-workload auto) runs the trial
as an Indexed Job of 2 pods and creates the sweep's headless Service (with the JobSet API:
tests/operator/test_nodes_jobset.py); the Job stand-in (tests/cluster/jobs.py) starts both
pods, the kubelet stand-in resolves `<trial>-0.<service>` to node 0's pod address (README:
cluster DNS), torchrun's static rendezvous joins them, and global rank 0 in node 0's pod
reports the one result.

The loss matches a 1-process trial with the same global batch (8, 2 micro-batches of 4):
measured: eval_loss and train_loss agree to a relative 1e-6 or better (float summation
order only, as with 2 processes in one pod); the test allows 1e-4.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from kubetune import conventions
from kubetune.operator.nodes_shape import NODES_WORKLOAD_ANNOTATION
from tests.cluster.cluster import Cluster
from tests.trainer.test_distributed import TRAINER

from .helpers import history, trial_pods, wait_phase, wait_status
from .runner import InProcessOperator

pytestmark = pytest.mark.slow

TOLERANCE = 1e-4
INDEX = "batch.kubernetes.io/job-completion-index"


def nodes_sweep(name: str, namespace: str, nodes: int | None) -> dict[str, Any]:
    # The trainer tests' two-process run, with the dropout they pass as a parameter fixed.
    trainer: dict[str, Any] = {**TRAINER, "args": {**TRAINER["args"], "lora_dropout": 0.0}}
    if nodes is not None:
        trainer["nodes"] = nodes
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "objective": {"metric": "eval_loss", "direction": "minimize"},
            "additionalMetrics": ["train_loss"],
            "algorithm": {"name": "random", "seed": 1},
            "budget": {"maxTrials": 1, "parallelism": 1, "maxFailedTrials": 0},
            "parameters": [{"name": "learning_rate", "type": "categorical", "values": [0.002]}],
            "metrics": {"interval": "1s"},
            "trainer": trainer,
        },
    }


def _jobs(cluster: Cluster, namespace: str, sweep: str) -> list[dict[str, Any]]:
    selector = f"{conventions.LABEL_SWEEP}={sweep}"
    return cluster.list_objects("jobs", namespace, group="batch", label_selector=selector)


def test_two_node_trial_trains_like_one_process_and_reports_once(
    trainer_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.create(nodes_sweep("one", namespace, None))
    crd.create(nodes_sweep("two", namespace, 2))
    started = time.monotonic()
    one = wait_phase(crd, namespace, "one", "Succeeded", "Failed", timeout=300)
    two = wait_phase(crd, namespace, "two", "Succeeded", "Failed", timeout=300)
    took = time.monotonic() - started
    assert one["phase"] == "Succeeded", one
    assert two["phase"] == "Succeeded", two
    [expected], [got] = history(one).values(), history(two).values()
    assert got["s"] == "Succeeded" and not got.get("rq"), got
    assert got["v"][0] == pytest.approx(expected["v"][0], rel=TOLERANCE)
    assert got["am"]["train_loss"] == pytest.approx(expected["am"]["train_loss"], rel=TOLERANCE)
    print(
        f"eval_loss 1 process {expected['v'][0]!r}, 2 nodes {got['v'][0]!r}; "
        f"train_loss {expected['am']['train_loss']!r} / {got['am']['train_loss']!r}; "
        f"both sweeps in {took:.0f}s"
    )

    (job,) = _jobs(crd, namespace, "two")
    assert job["spec"]["completionMode"] == "Indexed" and job["spec"]["completions"] == 2

    # The sweep ends with its primary pod's result; the Job's own status may come later.
    def complete() -> bool:
        (job,) = _jobs(crd, namespace, "two")
        conditions = (job.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Complete" for c in conditions)

    crd.wait_for(complete, timeout=30, message="the Job Complete")
    pods = sorted(trial_pods(crd, namespace, "two"), key=lambda p: p["metadata"]["labels"][INDEX])
    assert [p["metadata"]["labels"][INDEX] for p in pods] == ["0", "1"]
    trial = conventions.trial_name("two", 0)
    assert [p["spec"]["hostname"] for p in pods] == [f"{trial}-0", f"{trial}-1"]
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    # Global rank 0 (node 0's pod) serves metrics and reports; node 1 only trains.
    assert crd.kubelet is not None
    logs = [crd.kubelet.read_logs(namespace, p["metadata"]["name"]) for p in pods]
    assert "metrics on http://" in logs[0] and "metrics on http://" not in logs[1]
    assert "succeeded after 4 steps" in logs[0] and "succeeded after 4 steps" not in logs[1]

    # The sweep's headless Service, owned by the sweep (it goes with it).
    service = crd.get("services", conventions.rendezvous_service("two"), namespace)
    assert service is not None and service["spec"]["clusterIP"] == "None"
    sweep = crd.get("hyperparametersweeps", "two", namespace, group="kubetune.dev")
    assert sweep is not None
    (owner,) = service["metadata"]["ownerReferences"]
    assert owner["uid"] == sweep["metadata"]["uid"]
    # This cluster serves no JobSet API: the Indexed Job path, recorded on the sweep.
    assert sweep["metadata"]["annotations"][NODES_WORKLOAD_ANNOTATION] == "Job"


def test_a_failed_rank_on_another_node_fails_the_trial_without_a_hang(
    trainer_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    assert crd.kubelet is not None
    crd.kubelet.extra_env[conventions.ENV_TEST_FAIL_RANK] = "1"  # node 1's only process
    try:
        crd.create(nodes_sweep("fail", namespace, 2))
        started = time.monotonic()
        final = wait_phase(crd, namespace, "fail", "Failed", "Succeeded", timeout=240)
        took = time.monotonic() - started
    finally:
        del crd.kubelet.extra_env[conventions.ENV_TEST_FAIL_RANK]
    [record] = history(final).values()
    assert record["s"] == "Failed", record
    assert not record.get("rq"), record  # not taken for a disruption and rerun
    assert record["r"].startswith("WorkloadFailed: BackoffLimitExceeded"), record
    # Bounded by the Job's failure (it stops node 0's pod), not the 30-minute collective
    # timeout.
    assert took < 180, f"{took:.0f}s"
    crd.wait_for(
        lambda: (
            all(
                p["status"].get("phase") in ("Succeeded", "Failed")
                for p in trial_pods(crd, namespace, "fail")
            )
            or None
        ),
        timeout=60,
        message="no pod of the failed trial still running",
    )
    print(f"failed rank: trial Failed after {took:.0f}s")


def test_kueue_admits_all_nodes_of_a_trial_as_one_unit(
    trainer_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    manifest = nodes_sweep("queued", namespace, 2)
    manifest["spec"]["queueName"] = "gpu-queue"
    manifest["spec"]["trainer"]["resources"] = {"limits": {"nvidia.com/gpu": 1}}
    crd.set_kueue_quotas({"gpu-queue": 1})  # one node's GPU: not the trial's two
    try:
        crd.create(manifest)

        def queued(current: dict[str, Any]) -> bool:
            return (current.get("trials") or {}).get("queued") == 1

        wait_status(crd, namespace, "queued", queued, timeout=60, what="trial queued")
        time.sleep(3)
        (job,) = _jobs(crd, namespace, "queued")
        assert job["spec"]["suspend"] is True
        assert job["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "gpu-queue"
        assert trial_pods(crd, namespace, "queued") == []  # not one node started alone
        crd.set_kueue_quotas({"gpu-queue": 2})
        final = wait_phase(crd, namespace, "queued", "Succeeded", "Failed", timeout=300)
    finally:
        crd.set_kueue_quotas({})
    assert final["phase"] == "Succeeded", final
    [record] = history(final).values()
    assert record["s"] == "Succeeded" and not record.get("rq"), record
    # GPU-hours count both nodes' GPUs (2 x the primary pod's running time).
    assert record["gs"] > 0


def test_two_multi_node_trials_run_at_once_on_one_machine(
    trainer_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    """Both trials' node-0 pods run torchrun's store on 29500 at the same time: on a cluster
    each pod has its own ports; here the kubelet stand-in maps the rendezvous endpoint to a
    host port per pod (tests/cluster/README.md), so neither trial fails to listen."""
    manifest = nodes_sweep("pair", namespace, 2)
    manifest["spec"]["budget"].update({"maxTrials": 2, "parallelism": 2})
    manifest["spec"]["parameters"][0]["values"] = [0.002, 0.003]
    crd.create(manifest)
    final = wait_phase(crd, namespace, "pair", "Succeeded", "Failed", timeout=300)
    records = list(history(final).values())
    assert final["phase"] == "Succeeded", records
    assert [r["s"] for r in records] == ["Succeeded", "Succeeded"], records
    assert crd.kubelet is not None
    primaries = [
        p for p in trial_pods(crd, namespace, "pair") if p["metadata"]["labels"][INDEX] == "0"
    ]
    assert len(primaries) == 2
    endpoints = set()
    for pod in primaries:
        log = crd.kubelet.read_logs(namespace, pod["metadata"]["name"])
        assert "succeeded after 4 steps" in log
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        endpoints.add(env[conventions.ENV_RENDEZVOUS_ENDPOINT])
    # The same port in both specs, as on a cluster; only the stand-in maps it.
    assert {e.rsplit(":", 1)[1] for e in endpoints} == {str(conventions.RENDEZVOUS_PORT)}
    # They overlapped: each started before the other finished.
    spans = []
    for pod in primaries:
        (status,) = pod["status"]["containerStatuses"]
        terminated = status["state"]["terminated"]
        spans.append((terminated["startedAt"], terminated["finishedAt"]))
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans
