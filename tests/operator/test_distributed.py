"""Multi-pod trials (spec.workload PyTorchJob and JobSet) on the test cluster, with the
stand-in controllers of tests/cluster/training.py and the kinds' CRDs (testdata/): every
pod of a trial is started from kubetune's templates, the trial is judged once by its
primary pod, and a failed worker fails the trial through the workload's Failed condition."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from tests.cluster.cluster import Cluster

from .helpers import history, trial_pods, wait_phase, wait_status
from .runner import InProcessOperator, sweep_manifest

FAST = {"STEPS": "5", "STEP_SECONDS": "0.1"}
TESTDATA = Path(__file__).resolve().parents[1] / "cluster" / "testdata"


@pytest.fixture(scope="module")
def kinds(crd: Cluster) -> Iterator[Cluster]:
    for name in ("pytorchjobs-crd.yaml", "jobsets-crd.yaml"):
        crd.apply_crd(TESTDATA / name)
    yield crd


@pytest.fixture(scope="module")
def distributed(kinds: Cluster) -> Iterator[InProcessOperator]:
    # Started after the CRDs exist: kopf watches what the cluster serves.
    with InProcessOperator(kinds.kubeconfig) as running:
        yield running


def _with_env(template: dict[str, Any], **env: str) -> dict[str, Any]:
    template = copy.deepcopy(template)
    container = template["spec"]["containers"][0]
    container["env"] = [*container["env"], *({"name": k, "value": v} for k, v in env.items())]
    return template


def pytorch_sweep(name: str, namespace: str, **worker_env: str) -> dict[str, Any]:
    manifest = sweep_manifest(name, namespace, env=FAST, max_trials=1, parallelism=1)
    template = manifest["spec"].pop("template")
    manifest["spec"]["budget"]["maxFailedTrials"] = 0
    manifest["spec"]["workload"] = {
        "object": {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "spec": {
                "pytorchReplicaSpecs": {
                    "Master": {"replicas": 1, "template": _with_env(template, STEPS="20")},
                    "Worker": {"replicas": 1, "template": _with_env(template, **worker_env)},
                }
            },
        },
        "primaryPod": {"container": "trial"},
    }
    return manifest


def test_two_replica_pytorchjob_trial_starts_both_pods_and_records_one_result(
    distributed: InProcessOperator, kinds: Cluster, namespace: str
) -> None:
    kinds.create(pytorch_sweep("ptj", namespace))
    final = wait_phase(kinds, namespace, "ptj", "Succeeded", "Failed", timeout=120)
    assert final["phase"] == "Succeeded", final
    records = history(final)
    assert list(records) == [0]
    assert records[0]["s"] == "Succeeded" and records[0]["v"]
    trial = conventions.trial_name("ptj", 0)

    def succeeded() -> dict[str, Any] | None:
        found = kinds.get("pytorchjobs", trial, namespace, group="kubeflow.org", version="v1")
        conditions = ((found or {}).get("status") or {}).get("conditions") or []
        return found if any(c["type"] == "Succeeded" for c in conditions) else None

    found = kinds.wait_for(succeeded, timeout=30, message="PyTorchJob Succeeded")
    # kubetune's settings reached the stored object under their real field names.
    assert found["spec"]["runPolicy"]["backoffLimit"] == 0
    pods = trial_pods(kinds, namespace, "ptj")
    roles = sorted(p["metadata"]["labels"]["training.kubeflow.org/replica-type"] for p in pods)
    assert roles == ["master", "worker"]
    for pod in pods:
        assert pod["status"].get("startTime"), pod["metadata"]["name"]  # both started
        assert pod["metadata"]["labels"][conventions.LABEL_TRIAL] == trial
        env = {v["name"] for v in pod["spec"]["containers"][0]["env"]}
        assert {conventions.ENV_PARAMS, "MASTER_ADDR", "RANK"} <= env


def test_a_failed_worker_fails_the_trial_once(
    distributed: InProcessOperator, kinds: Cluster, namespace: str
) -> None:
    kinds.create(pytorch_sweep("ptjfail", namespace, FAIL_AT="2"))
    final = wait_phase(kinds, namespace, "ptjfail", "Failed", "Succeeded", timeout=120)
    records = history(final)
    assert list(records) == [0]
    assert records[0]["s"] == "Failed", records[0]
    assert records[0]["r"].startswith("WorkloadFailed: PyTorchJobFailed"), records[0]
    assert not records[0].get("rq")  # not taken for a disruption and rerun


def test_jobset_trial_is_judged_by_its_first_replicated_job(
    distributed: InProcessOperator, kinds: Cluster, namespace: str
) -> None:
    manifest = sweep_manifest("js", namespace, env=FAST, max_trials=1, parallelism=1)
    template = manifest["spec"].pop("template")
    manifest["spec"]["workload"] = {
        "object": {
            "apiVersion": "jobset.x-k8s.io/v1alpha2",
            "kind": "JobSet",
            "spec": {
                "replicatedJobs": [
                    {"name": "driver", "template": {"spec": {"template": template}}},
                    {
                        "name": "workers",
                        "replicas": 2,
                        "template": {"spec": {"template": template}},
                    },
                ]
            },
        },
        "primaryPod": {"container": "trial"},
    }
    kinds.create(manifest)
    final = wait_phase(kinds, namespace, "js", "Succeeded", "Failed", timeout=120)
    assert final["phase"] == "Succeeded", final
    assert list(history(final)) == [0]
    pods = trial_pods(kinds, namespace, "js")
    assert len(pods) == 3
    name = conventions.trial_name("js", 0)

    def completed() -> dict[str, Any] | None:
        found = kinds.get("jobsets", name, namespace, group="jobset.x-k8s.io", version="v1alpha2")
        conditions = ((found or {}).get("status") or {}).get("conditions") or []
        return found if any(c["type"] == "Completed" for c in conditions) else None

    # The trial is judged when the driver ends; the workers may end a little later.
    jobset = kinds.wait_for(completed, timeout=30, message="JobSet Completed")
    assert jobset["spec"]["failurePolicy"] == {"maxRestarts": 0}


def test_deleting_the_sweep_deletes_its_running_pytorchjob_and_all_its_pods(
    distributed: InProcessOperator, kinds: Cluster, namespace: str
) -> None:
    manifest = pytorch_sweep("ptjdel", namespace)
    for replica in manifest["spec"]["workload"]["object"]["spec"]["pytorchReplicaSpecs"].values():
        replica["template"] = _with_env(replica["template"], STEPS="300")
    kinds.create(manifest)
    kinds.wait_for(
        lambda: len(trial_pods(kinds, namespace, "ptjdel")) == 2 or None,
        timeout=30,
        message="both pods",
    )
    kinds.delete("hyperparametersweeps", "ptjdel", namespace, group="kubetune.dev")
    trial = conventions.trial_name("ptjdel", 0)
    kinds.wait_for_deletion(
        "pytorchjobs", trial, namespace=namespace, group="kubeflow.org", timeout=30
    )
    kinds.wait_for(
        lambda: not trial_pods(kinds, namespace, "ptjdel") or None, timeout=30, message="no pods"
    )


@pytest.mark.parametrize("kind", ["PyTorchJob", "JobSet"])
def test_two_replica_trials_are_queued_and_admitted_as_units_by_kueue(
    distributed: InProcessOperator, kinds: Cluster, namespace: str, kind: str
) -> None:
    """Each trial has 2 pods of 1 GPU; a quota of 2 admits one trial at a time, whole."""
    name = f"kq{kind.lower()}"
    manifest = pytorch_sweep(name, namespace)
    spec = manifest["spec"]
    spec["budget"].update(maxTrials=2, parallelism=2)
    spec["queueName"] = "gpus"
    replicas = spec["workload"]["object"]["spec"]["pytorchReplicaSpecs"]
    for replica in replicas.values():
        replica["template"] = _with_env(replica["template"], STEPS="10")
        container = replica["template"]["spec"]["containers"][0]
        container["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    if kind == "JobSet":
        template = replicas["Master"]["template"]
        spec["workload"]["object"] = {
            "apiVersion": "jobset.x-k8s.io/v1alpha2",
            "kind": "JobSet",
            "spec": {
                "replicatedJobs": [
                    {"name": "w", "replicas": 2, "template": {"spec": {"template": template}}}
                ]
            },
        }
    kinds.set_kueue_quotas({"gpus": 2})
    seen: list[dict[str, int]] = []
    try:
        kinds.create(manifest)

        def done(current: dict[str, Any]) -> bool:
            seen.append(dict(current.get("trials") or {}))
            return current.get("phase") in ("Succeeded", "Failed")

        final = wait_status(kinds, namespace, name, done, timeout=120, what="sweep finished")
        peak = kinds.kueue.peak["gpus"]
    finally:
        kinds.set_kueue_quotas({})
    assert final["phase"] == "Succeeded", final
    assert (final["trials"]["succeeded"], final["trials"].get("failed", 0)) == (2, 0)
    assert all(not r.get("rq") for r in history(final).values())  # none lost or requeued
    assert max(s.get("queued", 0) for s in seen) == 1  # the second waited as Queued
    assert peak == 2  # both pods of one trial admitted together, never two trials
