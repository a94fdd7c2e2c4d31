"""A `trainer:` sweep reaches tainted GPU nodes: its pod fields survive the CRD and the
operator, the pod policy still refuses what it should, and the scheduler places the pods."""

from __future__ import annotations

import json
from typing import Any

from kubetune import API_GROUP, PLURAL, conventions
from tests.cluster.cluster import Cluster

from .helpers import condition, sweep, trial_pods, wait_phase, wait_status
from .runner import InProcessOperator

GPU_TAINT = "nvidia.com/gpu=present:NoSchedule"
POOL = {"pool": "h100"}


def _trainer_sweep(name: str, namespace: str, **trainer: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "budget": {"maxTrials": 1, "parallelism": 1},
            "parameters": [{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1e-3}],
            "queueName": "team-gpu",
            "trainer": {
                "image": "kubetune-trainer:test",
                "maxSteps": 4,
                "evalEvery": 2,
                "resources": {"limits": {"nvidia.com/gpu": 1}},
                "nodeSelector": POOL,
                "shmSize": "1Gi",
                "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": "r"}}],
                "volumeMounts": [{"name": "results", "mountPath": "/results"}],
                "outputDir": "/results",
                **trainer,
            },
        },
    }


def _apply(cluster: Cluster, manifest: dict[str, Any]) -> None:
    # kubectl apply: the API server validates (and would prune) against the generated CRD.
    applied = cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    assert applied.returncode == 0, applied.stderr


def _delete(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.delete(PLURAL, name, namespace=namespace, group=API_GROUP)


def test_trainer_pods_reach_a_tainted_gpu_node_only_with_the_toleration(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.add_node("h100-1", gpus=1)
    crd.kubectl("label", "node", "h100-1", "pool=h100", check=True)
    crd.kubectl("taint", "node", "h100-1", GPU_TAINT, check=True)

    _apply(crd, _trainer_sweep("plain", namespace))
    stuck = wait_status(
        crd,
        namespace,
        "plain",
        lambda s: condition(s, "TrialsStarted").get("status") == "False",
        what="TrialsStarted=False",
    )
    assert (
        "untolerated taint {nvidia.com/gpu: present}"
        in condition(stuck, "TrialsStarted")["message"]
    )
    _delete(crd, namespace, "plain")
    crd.wait_for(
        lambda: not trial_pods(crd, namespace, "plain"), timeout=30, message="pods deleted"
    )

    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    _apply(crd, _trainer_sweep("gpu", namespace, tolerations=[toleration]))
    stored = sweep(crd, namespace, "gpu")["spec"]["trainer"]
    assert stored["tolerations"] == [toleration] and stored["shmSize"] == "1Gi"
    crd.wait_for(
        lambda: any(p["spec"].get("nodeName") for p in trial_pods(crd, namespace, "gpu")),
        timeout=30,
        message="trial pod bound",
    )
    pod = trial_pods(crd, namespace, "gpu")[0]
    assert pod["spec"]["nodeName"] == "h100-1"
    assert pod["spec"]["tolerations"] == [toleration]
    assert pod["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "team-gpu"
    mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts == {"/results", "/dev/shm"}
    _delete(crd, namespace, "gpu")


def test_host_path_under_trainer_volumes_is_invalid_naming_the_field(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    manifest = _trainer_sweep(
        "host",
        namespace,
        volumes=[{"name": "results", "hostPath": {"path": "/"}}],
    )
    _apply(crd, manifest)
    invalid = wait_phase(crd, namespace, "host", "Invalid", timeout=30)
    message = condition(invalid, "SpecAccepted")["message"]
    assert "spec.trainer.volumes[0].hostPath: refused by pod policy restricted" in message
    assert not trial_pods(crd, namespace, "host")
