"""Multi-pod trial workloads (JobSet, PyTorchJob): kubetune's labels, the trial contract,
hardening and the admin pod policy reach every pod template inside, the primary pod is
named by its controller's labels, and the object runs once."""

import copy
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    PRIMARY_ANNOTATION,
    WORKLOAD_ANNOTATION,
)
from kubetune.builders.errors import BuildError
from kubetune.builders.workload import build_trial_workload
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep
from kubetune.spec.checks import semantic_problems
from kubetune.spec.workload_kinds import JOBSET, PYTORCH_JOB, parse_selector


def _template(role: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"role": role}},
        "spec": {
            "containers": [
                {
                    "name": "pytorch",
                    "image": "ghcr.io/example/train:1",
                    "args": ["--lr=${params.lr}", "--role=" + role],
                }
            ]
        },
    }


PYTORCH: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "PyTorchJob",
    "metadata": {"labels": {"team": "nlp"}},
    "spec": {
        "runPolicy": {"backoffLimit": 3, "activeDeadlineSeconds": 60},
        "pytorchReplicaSpecs": {
            # Worker first: the master is the primary pod whatever the order.
            "Worker": {"replicas": 1, "restartPolicy": "OnFailure", "template": _template("w")},
            "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": _template("m")},
        },
    },
}
JOBSET_OBJ: dict[str, Any] = {
    "apiVersion": "jobset.x-k8s.io/v1alpha2",
    "kind": "JobSet",
    "spec": {
        "failurePolicy": {"maxRestarts": 3},
        "replicatedJobs": [
            {
                "name": "driver",
                "replicas": 1,
                "template": {"spec": {"backoffLimit": 2, "template": _template("d")}},
            },
            {
                "name": "workers",
                "replicas": 2,
                "template": {
                    "spec": {
                        "parallelism": 2,
                        "completions": 2,
                        "completionMode": "Indexed",
                        "template": _template("w"),
                    }
                },
            },
        ],
    },
}


def _sweep(obj: dict[str, Any], **extra: Any) -> HyperparameterSweep:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "dist", "namespace": "team"},
            "spec": {
                "parameters": [{"name": "lr", "type": "float", "min": 0.001, "max": 0.1}],
                "budget": {"maxTrials": 2, "trialTimeout": "10m"},
                "workload": {"object": copy.deepcopy(obj), "primaryPod": {"container": "pytorch"}},
                **extra,
            },
        }
    )


def _build(obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    sweep = _sweep(obj, **kwargs.pop("spec", {}))
    return build_trial_workload(sweep, effective_spec(sweep.spec), 1, {"lr": 0.01}, **kwargs)


def _templates(made: dict[str, Any]) -> list[dict[str, Any]]:
    if made["kind"] == "PyTorchJob":
        return [r["template"] for r in made["spec"]["pytorchReplicaSpecs"].values()]
    return [j["template"]["spec"]["template"] for j in made["spec"]["replicatedJobs"]]


@pytest.mark.parametrize("obj", [PYTORCH, JOBSET_OBJ], ids=["pytorchjob", "jobset"])
def test_every_pod_template_is_a_trial_pod(obj: dict[str, Any]) -> None:
    made = _build(obj, attempt=2)
    trial = conventions.trial_name("dist", 1)
    assert made["metadata"]["name"] == trial
    assert made["metadata"]["annotations"][ATTEMPT_ANNOTATION] == "2"
    templates = _templates(made)
    assert len(templates) == 2
    for template in templates:
        meta = template["metadata"]
        assert meta["labels"][conventions.LABEL_TRIAL] == trial
        assert meta["labels"][conventions.LABEL_SWEEP] == "dist"
        assert meta["labels"]["role"] in ("m", "w", "d")  # the user's labels stay
        assert meta["annotations"][ATTEMPT_ANNOTATION] == "2"
        assert meta["annotations"][WORKLOAD_ANNOTATION] == f"{obj['apiVersion']}/{obj['kind']}"
        assert "name" not in meta
        spec = template["spec"]
        (container,) = spec["containers"]
        env = {v["name"]: v.get("value") for v in container["env"]}
        assert env[conventions.ENV_PARAMS] == '{"lr": 0.01}'
        assert env[conventions.ENV_TRIAL] == trial
        assert container["args"][0] == "--lr=0.01"
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert spec["activeDeadlineSeconds"] == 600
        assert spec["restartPolicy"] == "Never"


def test_pytorchjob_primary_is_the_master_and_it_runs_once() -> None:
    made = _build(PYTORCH)
    for replica in made["spec"]["pytorchReplicaSpecs"].values():
        selector = replica["template"]["metadata"]["annotations"][PRIMARY_ANNOTATION]
        assert parse_selector(selector) == {
            "training.kubeflow.org/replica-type": "master",
            "training.kubeflow.org/replica-index": "0",
        }
        assert replica["restartPolicy"] == "Never"
    assert made["spec"]["runPolicy"] == {"backoffLimit": 0}
    worker_only = copy.deepcopy(PYTORCH)
    del worker_only["spec"]["pytorchReplicaSpecs"]["Master"]
    assert PYTORCH_JOB.primary_labels(worker_only)["training.kubeflow.org/replica-type"] == (
        "worker"
    )


def test_jobset_primary_is_pod_0_of_job_0_of_the_first_replicated_job() -> None:
    made = _build(JOBSET_OBJ)
    selector = _templates(made)[0]["metadata"]["annotations"][PRIMARY_ANNOTATION]
    assert parse_selector(selector) == {
        "jobset.sigs.k8s.io/replicatedjob-name": "driver",
        "jobset.sigs.k8s.io/job-index": "0",
    }
    assert made["spec"]["failurePolicy"] == {"maxRestarts": 0}
    assert all(j["template"]["spec"]["backoffLimit"] == 0 for j in made["spec"]["replicatedJobs"])
    indexed = copy.deepcopy(JOBSET_OBJ)
    indexed["spec"]["replicatedJobs"].reverse()
    assert JOBSET.primary_labels(indexed)["batch.kubernetes.io/job-completion-index"] == "0"


@pytest.mark.parametrize(
    ("obj", "suspended"),
    [
        (PYTORCH, lambda m: m["spec"]["runPolicy"]["suspend"]),
        (JOBSET_OBJ, lambda m: m["spec"]["suspend"]),
    ],
    ids=["pytorchjob", "jobset"],
)
def test_queue_name_suspends_the_workload_for_kueue(obj: dict[str, Any], suspended: Any) -> None:
    made = _build(obj, spec={"queueName": "gpu"})
    assert suspended(made) is True
    assert made["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "gpu"
    for template in _templates(made):
        assert conventions.LABEL_KUEUE_QUEUE not in template["metadata"]["labels"]


def test_policy_reaches_a_worker_template_and_names_its_field() -> None:
    obj = copy.deepcopy(PYTORCH)
    worker = obj["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["spec"]
    worker["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(BuildError) as caught:
        _build(obj, policy=PodPolicy())
    assert caught.value.field == (
        "spec.workload.object.spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]"
        ".securityContext.privileged"
    )


def test_bad_multi_pod_workloads_name_the_field() -> None:
    obj = copy.deepcopy(JOBSET_OBJ)
    del obj["spec"]["replicatedJobs"][1]["template"]["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    assert semantic_problems(_sweep(obj)) == [
        "spec.workload.object.spec.replicatedJobs[1].template.spec.template.spec.containers[0]"
        ".image: required"
    ]
    obj = copy.deepcopy(PYTORCH)
    obj["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["name"] = "x"
    assert semantic_problems(_sweep(obj)) == [
        "spec.workload.primaryPod.container: no container named 'pytorch' in "
        "spec.workload.object.spec.pytorchReplicaSpecs.Master.template.spec.containers (have x)"
    ]
