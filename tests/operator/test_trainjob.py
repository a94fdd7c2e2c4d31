"""Kubeflow Trainer TrainJob trials on the test cluster: the TrainJob stand-in
(tests/cluster/trainjob.py) makes a JobSet from a ClusterTrainingRuntime with kubetune's
podTemplateOverrides entry and spec.trainer.env applied, the JobSet and Indexed Job
stand-ins make numNodes pods; the trial is judged by rank 0 of the trainer job, a failed
node fails it through the TrainJob's Failed condition, Kueue admits it as one unit, and it
goes with its sweep. Real kubectl, kopf and CRD schemas (testdata/trainjobs-crd.yaml)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune.operator.config import OperatorConfig
from kubetune.policy.pod_policy import PodPolicy
from tests.cluster.cluster import Cluster

from .helpers import history, trial_pods, wait_phase, wait_status
from .runner import InProcessOperator, sweep_manifest

TESTDATA = Path(__file__).resolve().parents[1] / "cluster" / "testdata"
SCRIPT = Path(__file__).with_name("trial_script.py")
RUNTIME = "torch-test"
GROUP = "trainer.kubeflow.org"


def _runtime() -> dict[str, Any]:
    """A ClusterTrainingRuntime shaped as Kubeflow's torch runtimes: an Indexed trainer job
    `node` (ancestor label trainer) whose container `node` runs the trial script; node 1
    fails at once when the TrainJob's env says FAIL_RANK=1 (a failed worker)."""
    run = f'[ "$JOB_COMPLETION_INDEX" = "$FAIL_RANK" ] && exit 3; exec python {SCRIPT}'
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ClusterTrainingRuntime",
        "metadata": {"name": RUNTIME},
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {"numProcPerNode": "auto"}},
            "template": {
                "spec": {
                    "replicatedJobs": [
                        {
                            "name": "node",
                            "template": {
                                "metadata": {
                                    "labels": {f"{GROUP}/trainjob-ancestor-step": "trainer"}
                                },
                                "spec": {
                                    "completionMode": "Indexed",
                                    "backoffLimit": 0,
                                    "template": {
                                        "spec": {
                                            "restartPolicy": "Never",
                                            "containers": [
                                                {
                                                    "name": "node",
                                                    "image": "python:3.11-slim",
                                                    "command": ["sh", "-c", run],
                                                }
                                            ],
                                        }
                                    },
                                },
                            },
                        }
                    ]
                }
            },
        },
    }


@pytest.fixture(scope="module")
def trainer(crd: Cluster) -> Iterator[Cluster]:
    for name in ("jobsets-crd.yaml", "trainjobs-crd.yaml"):
        crd.apply_crd(TESTDATA / name)
    crd.create(_runtime())
    yield crd


@pytest.fixture(scope="module")
def operator(trainer: Cluster) -> Iterator[InProcessOperator]:
    # The admin vouches for the runtime: below level privileged only such a one is admitted.
    policy = PodPolicy(training_runtimes=(RUNTIME,))
    config = OperatorConfig(metrics_port=None, idle_interval=5.0, pod_policy=policy)
    with InProcessOperator(trainer.kubeconfig, config) as running:
        yield running


def trainjob_sweep(name: str, namespace: str, nodes: int = 2, **env: str) -> dict[str, Any]:
    manifest = sweep_manifest(name, namespace, max_trials=1, parallelism=1)
    manifest["spec"].pop("template")
    manifest["spec"]["budget"]["maxFailedTrials"] = 0
    values = {"STEPS": "5", "STEP_SECONDS": "0.1", "FAIL_RANK": "none", **env}
    manifest["spec"]["workload"] = {
        "object": {
            "apiVersion": f"{GROUP}/v1alpha1",
            "kind": "TrainJob",
            "spec": {
                "runtimeRef": {"name": RUNTIME},
                "trainer": {
                    "numNodes": nodes,
                    "env": [{"name": k, "value": v} for k, v in values.items()],
                },
            },
        }
    }
    return manifest


def _trainjob(cluster: Cluster, namespace: str, trial: str) -> dict[str, Any] | None:
    return cluster.get("trainjobs", trial, namespace, group=GROUP, version="v1alpha1")


def _has(obj: dict[str, Any] | None, condition: str) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == condition and c["status"] == "True" for c in conditions)


def test_a_two_node_trainjob_trial_succeeds_with_one_result_from_rank_0(
    operator: InProcessOperator, trainer: Cluster, namespace: str
) -> None:
    trainer.create(trainjob_sweep("tj", namespace))
    trial = conventions.trial_name("tj", 0)
    stored = trainer.wait_for(
        lambda: _trainjob(trainer, namespace, trial), timeout=30, message="the TrainJob"
    )
    final = wait_phase(trainer, namespace, "tj", "Succeeded", "Failed", timeout=120)
    assert final["phase"] == "Succeeded", final
    records = history(final)
    assert list(records) == [0]
    assert records[0]["s"] == "Succeeded" and records[0]["v"]
    # kubetune's override reached the stored TrainJob under its real field names (it is
    # deleted once its trial is judged, so it is read while it runs).
    assert stored["spec"]["podTemplateOverrides"][-1]["targetJobs"] == [{"name": "node"}]
    pods = trial_pods(trainer, namespace, "tj")
    indexes = sorted(
        p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] for p in pods
    )
    assert indexes == ["0", "1"]  # numNodes pods, both found by kubetune's labels
    for pod in pods:
        assert pod["status"].get("startTime"), pod["metadata"]["name"]
        assert pod["metadata"]["labels"]["jobset.sigs.k8s.io/jobset-name"] == trial
        env = {v["name"]: v.get("value") for v in pod["spec"]["containers"][0]["env"]}
        assert env[conventions.ENV_TRIAL] == trial
        assert conventions.ENV_PARAMS in env


def test_a_failed_node_fails_the_trial_through_the_trainjob(
    operator: InProcessOperator, trainer: Cluster, namespace: str
) -> None:
    trainer.create(trainjob_sweep("tjfail", namespace, FAIL_RANK="1", STEPS="50"))
    final = wait_phase(trainer, namespace, "tjfail", "Failed", "Succeeded", timeout=120)
    records = history(final)
    assert list(records) == [0]
    assert records[0]["s"] == "Failed", records[0]
    # The JobSet's reason, through the TrainJob's Failed condition.
    assert records[0]["r"].startswith("WorkloadFailed: FailedJobs"), records[0]
    assert not records[0].get("rq")  # not taken for a disruption and rerun


def test_deleting_the_sweep_deletes_its_running_trainjob_and_all_its_pods(
    operator: InProcessOperator, trainer: Cluster, namespace: str
) -> None:
    trainer.create(trainjob_sweep("tjdel", namespace, STEPS="300"))
    trainer.wait_for(
        lambda: len(trial_pods(trainer, namespace, "tjdel")) == 2 or None,
        timeout=30,
        message="both pods",
    )
    trainer.delete("hyperparametersweeps", "tjdel", namespace, group="kubetune.dev")
    trial = conventions.trial_name("tjdel", 0)
    trainer.wait_for_deletion("trainjobs", trial, namespace=namespace, group=GROUP, timeout=30)
    trainer.wait_for(
        lambda: not trial_pods(trainer, namespace, "tjdel") or None, timeout=30, message="no pods"
    )


def test_trainjob_trials_are_queued_and_admitted_as_units_by_kueue(
    operator: InProcessOperator, trainer: Cluster, namespace: str
) -> None:
    """Each trial is 2 nodes of 1 GPU; a quota of 2 admits one trial at a time, whole."""
    manifest = trainjob_sweep("tjq", namespace, STEPS="10")
    spec = manifest["spec"]
    spec["budget"].update(maxTrials=2, parallelism=2)
    spec["queueName"] = "gpus"
    spec["workload"]["object"]["spec"]["trainer"]["resourcesPerNode"] = {
        "limits": {"nvidia.com/gpu": "1"}
    }
    trainer.set_kueue_quotas({"gpus": 2})
    seen: list[dict[str, int]] = []
    try:
        trainer.create(manifest)

        def done(current: dict[str, Any]) -> bool:
            seen.append(dict(current.get("trials") or {}))
            return current.get("phase") in ("Succeeded", "Failed")

        final = wait_status(trainer, namespace, "tjq", done, timeout=120, what="sweep finished")
        peak = trainer.kueue.peak["gpus"]
    finally:
        trainer.set_kueue_quotas({})
    assert final["phase"] == "Succeeded", final
    assert (final["trials"]["succeeded"], final["trials"].get("failed", 0)) == (2, 0)
    assert all(not r.get("rq") for r in history(final).values())  # none lost or requeued
    assert max(s.get("queued", 0) for s in seen) == 1  # the second waited as Queued
    assert peak == 2  # both nodes of one trial admitted together, never two trials


def test_a_runtime_the_admin_did_not_vouch_for_fails_the_sweep_invalid(
    operator: InProcessOperator, trainer: Cluster, namespace: str
) -> None:
    manifest = trainjob_sweep("tjpolicy", namespace)
    manifest["spec"]["workload"]["object"]["spec"]["runtimeRef"]["name"] = "other"
    trainer.create(manifest)
    final = wait_phase(trainer, namespace, "tjpolicy", "Invalid", "Failed", timeout=60)
    assert final["phase"] == "Invalid", final
    assert not trial_pods(trainer, namespace, "tjpolicy")
    assert _trainjob(trainer, namespace, conventions.trial_name("tjpolicy", 0)) is None
