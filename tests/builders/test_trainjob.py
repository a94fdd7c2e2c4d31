"""Kubeflow Trainer TrainJob trials (trainer.kubeflow.org/v1alpha1): the trial contract goes
through spec.trainer.env, kubetune's labels and annotations through a podTemplateOverrides
entry for the trainer job, Kueue suspends it, the admin pod policy reaches what the TrainJob
itself adds and admits only runtimes the admin vouches for, and bad input is refused naming
its field."""

import copy
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    CONTAINER_ANNOTATION,
    PRIMARY_ANNOTATION,
    WORKLOAD_ANNOTATION,
)
from kubetune.builders.errors import BuildError
from kubetune.builders.security import PolicyRefused
from kubetune.builders.workload import build_trial_workload
from kubetune.operator.pod_state import is_primary, job_view
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep
from kubetune.spec.checks import semantic_problems
from kubetune.spec.workload_kinds import parse_selector

TRAINJOB: dict[str, Any] = {
    "apiVersion": "trainer.kubeflow.org/v1alpha1",
    "kind": "TrainJob",
    "metadata": {"labels": {"team": "nlp"}},
    "spec": {
        "runtimeRef": {"name": "torch-distributed"},
        "trainer": {
            "numNodes": 2,
            "image": "ghcr.io/example/train:1",
            "args": ["--lr=${params.lr}"],
            "env": [
                {"name": "HF_HOME", "value": "/cache"},
                # A user's KUBETUNE_* is dropped: the contract is kubetune's.
                {"name": conventions.ENV_TRIAL, "value": "spoofed"},
            ],
            "resourcesPerNode": {"limits": {"nvidia.com/gpu": 2}},
        },
        "podTemplateOverrides": [
            {
                "targetJobs": [{"name": "node"}],
                "metadata": {"labels": {conventions.LABEL_TRIAL: "spoofed", "tier": "gpu"}},
                "spec": {"nodeSelector": {"accelerator": "h100"}},
            }
        ],
    },
}
VOUCHED = PodPolicy(training_runtimes=("torch-distributed",))


def _sweep(obj: dict[str, Any], workload: dict[str, Any] | None = None, **extra: Any) -> Any:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "tj", "namespace": "team"},
            "spec": {
                "parameters": [{"name": "lr", "type": "float", "min": 0.001, "max": 0.1}],
                "budget": {"maxTrials": 2},
                "workload": {"object": copy.deepcopy(obj), **(workload or {})},
                **extra,
            },
        }
    )


def _build(
    obj: dict[str, Any], policy: PodPolicy = VOUCHED, sweep: HyperparameterSweep | None = None
) -> dict[str, Any]:
    sweep = sweep or _sweep(obj)
    spec = effective_spec(sweep.spec)
    return build_trial_workload(sweep, spec, 1, {"lr": 0.01}, attempt=2, policy=policy)


def test_the_contract_goes_through_trainer_env_and_labels_through_an_override() -> None:
    made = _build(TRAINJOB)
    trial = conventions.trial_name("tj", 1)
    assert made["metadata"]["name"] == trial
    assert made["metadata"]["labels"][conventions.LABEL_TRIAL] == trial
    assert made["metadata"]["labels"]["team"] == "nlp"
    assert made["metadata"]["annotations"][ATTEMPT_ANNOTATION] == "2"
    trainer = made["spec"]["trainer"]
    env = {v["name"]: v.get("value") for v in trainer["env"]}
    assert env[conventions.ENV_TRIAL] == trial
    assert env[conventions.ENV_PARAMS] == '{"lr": 0.01}'
    assert env["HF_HOME"] == "/cache"
    assert [v["name"] for v in trainer["env"]].count(conventions.ENV_TRIAL) == 1
    assert trainer["args"] == ["--lr=0.01"]
    # The user's override stays first; kubetune's comes last, so its labels win.
    user, ours = made["spec"]["podTemplateOverrides"]
    assert user["spec"] == {"nodeSelector": {"accelerator": "h100"}}
    assert ours["targetJobs"] == [{"name": "node"}]
    merged = {**user["metadata"]["labels"], **ours["metadata"]["labels"]}
    assert merged[conventions.LABEL_TRIAL] == trial and merged["tier"] == "gpu"
    # Only kubetune's entry labels pods as the trial's (a user's spoof is dropped).
    assert user["metadata"]["labels"] == {"tier": "gpu"}
    annotations = ours["metadata"]["annotations"]
    assert annotations[ATTEMPT_ANNOTATION] == "2"
    assert annotations[CONTAINER_ANNOTATION] == "node"
    assert annotations[WORKLOAD_ANNOTATION] == "trainer.kubeflow.org/v1alpha1/TrainJob"
    assert parse_selector(annotations[PRIMARY_ANNOTATION]) == {
        "jobset.sigs.k8s.io/replicatedjob-name": "node",
        "jobset.sigs.k8s.io/job-index": "0",
        "batch.kubernetes.io/job-completion-index": "0",
    }
    # No Kueue without a queue.
    assert "suspend" not in made["spec"]


def test_kubetune_labels_come_only_from_kubetune() -> None:
    obj = copy.deepcopy(TRAINJOB)
    obj["spec"]["labels"] = {conventions.LABEL_SWEEP: "tj", "keep": "1"}
    obj["spec"]["podTemplateOverrides"].append(
        {
            "targetJobs": [{"name": "dataset-initializer"}],
            "metadata": {"labels": {conventions.LABEL_TRIAL: "tj-t0001", "keep": "2"}},
        }
    )
    made = _build(obj)
    # spec.labels go to the JobSet and Jobs, which must not look like trial workloads.
    assert made["spec"]["labels"] == {"keep": "1"}
    # An initializer's pods labelled as the trial's would be judged as its primary pod.
    assert made["spec"]["podTemplateOverrides"][1]["metadata"]["labels"] == {"keep": "2"}
    assert made["spec"]["podTemplateOverrides"][-1]["targetJobs"] == [{"name": "node"}]


def test_the_primary_pod_is_rank_0_of_the_named_trainer_job() -> None:
    made = _build(TRAINJOB, sweep=_sweep(TRAINJOB, {"trainerJob": "trainer"}))
    ours = made["spec"]["podTemplateOverrides"][-1]
    assert ours["targetJobs"] == [{"name": "trainer"}]
    pod_labels = {
        "jobset.sigs.k8s.io/replicatedjob-name": "trainer",
        "jobset.sigs.k8s.io/job-index": "0",
    }

    def pod(index: str) -> dict[str, Any]:
        labels = {**pod_labels, "batch.kubernetes.io/job-completion-index": index}
        return {"metadata": {"labels": labels, "annotations": ours["metadata"]["annotations"]}}

    assert is_primary(pod("0"))
    assert not is_primary(pod("1"))


def test_a_queued_trainjob_is_suspended_labelled_and_seen_as_queued() -> None:
    sweep = _sweep(TRAINJOB, queueName="gpu-queue")
    made = _build(TRAINJOB, sweep=sweep)
    assert made["spec"]["suspend"] is True
    assert made["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "gpu-queue"
    # The pods carry no queue label: Kueue admits the TrainJob as one unit.
    for override in made["spec"]["podTemplateOverrides"]:
        labels = (override.get("metadata") or {}).get("labels") or {}
        assert conventions.LABEL_KUEUE_QUEUE not in labels
    made["metadata"]["uid"] = "u1"
    seen = job_view(made)
    assert seen is not None and seen.kind == "queued"
    assert seen.gpus == 2  # one node's: the primary pod's
    made["spec"]["suspend"] = False
    assert job_view(made) is None  # admitted: its pods tell
    made["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "x"}]}
    failed = job_view(made)
    assert failed is not None and failed.ending is not None
    assert failed.ending.workload_failed == "x"


def test_the_pod_policy_admits_only_runtimes_the_admin_vouches_for() -> None:
    with pytest.raises(PolicyRefused) as refused:
        _build(TRAINJOB, policy=PodPolicy())
    assert str(refused.value).startswith(
        "spec.workload.object.spec.runtimeRef: refused by pod policy restricted: the trial's "
        "pods come from ClusterTrainingRuntime 'torch-distributed', which kubetune cannot "
        "check; only a ClusterTrainingRuntime in the policy's trainingRuntimes (none)"
    )
    # A namespaced TrainingRuntime, which a tenant may write, never passes below privileged.
    namespaced = copy.deepcopy(TRAINJOB)
    namespaced["spec"]["runtimeRef"]["kind"] = "TrainingRuntime"
    with pytest.raises(PolicyRefused):
        _build(namespaced)
    assert _build(namespaced, policy=PodPolicy(level="privileged"))["kind"] == "TrainJob"


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        (
            {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
            "spec.workload.object.spec.podTemplateOverrides[1].spec.volumes[0].hostPath: "
            "refused by pod policy restricted",
        ),
        (
            {"serviceAccountName": "admin"},
            "spec.workload.object.spec.podTemplateOverrides[1].spec.serviceAccountName: "
            "refused by pod policy restricted: ServiceAccount admin is not in "
            "allowedServiceAccounts",
        ),
    ],
    ids=["hostPath", "serviceAccount"],
)
def test_what_an_override_adds_meets_the_pod_policy(override: dict[str, Any], problem: str) -> None:
    obj = copy.deepcopy(TRAINJOB)
    obj["spec"]["podTemplateOverrides"].append(
        {"targetJobs": [{"name": "dataset-initializer"}], "spec": override}
    )
    with pytest.raises(PolicyRefused) as refused:
        _build(obj)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


def _edit(path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(TRAINJOB)
    *parents, last = path.split(".")
    holder: Any = obj
    for key in parents:
        holder = holder[int(key)] if isinstance(holder, list) else holder[key]
    if value is None:
        del holder[last]
    elif isinstance(holder, list):
        holder[int(last)] = value
    else:
        holder[last] = value
    return obj


W = "spec.workload.object"


@pytest.mark.parametrize(
    ("obj", "workload", "problem"),
    [
        (
            _edit("apiVersion", "trainer.kubeflow.org/v2alpha1"),
            {},
            f"{W}.apiVersion: 'trainer.kubeflow.org/v2alpha1' is not supported for a "
            "TrainJob: kubetune supports trainer.kubeflow.org/v1alpha1",
        ),
        (
            _edit("spec.runtimeRef", None),
            {},
            f"{W}.spec.runtimeRef.name: required: the (Cluster)TrainingRuntime",
        ),
        (
            _edit("spec.runtimeRef.kind", "Runtime"),
            {},
            f"{W}.spec.runtimeRef.kind: must be one of ClusterTrainingRuntime, TrainingRuntime",
        ),
        (
            _edit("spec.runtimePatches", [{"manager": "me"}]),
            {},
            f"{W}.spec.runtimePatches: not supported (the API after Trainer v2.1)",
        ),
        (
            _edit("spec.podTemplateOverrides.0.targetJobs", []),
            {},
            f"{W}.spec.podTemplateOverrides[0].targetJobs: required",
        ),
        (
            _edit("spec.podTemplateOverrides.0.spec", {"hostNetwork": True}),
            {},
            f"{W}.spec.podTemplateOverrides[0].spec.hostNetwork: not a field a TrainJob may "
            "override",
        ),
        (
            _edit(
                "spec.podTemplateOverrides.0.spec",
                {"containers": [{"name": "node", "env": [{"name": "A", "value": "1"}]}]},
            ),
            {},
            f"{W}.spec.podTemplateOverrides[0].spec.containers[0].env: the Trainer refuses env "
            "overrides on container 'node': set the trainer's env in spec.trainer.env",
        ),
        (
            _edit(
                "spec.podTemplateOverrides.0.spec",
                {"containers": [{"name": "sidecar", "image": "evil:1"}]},
            ),
            {},
            f"{W}.spec.podTemplateOverrides[0].spec.containers[0].image: a container override "
            "sets only env and volumeMounts",
        ),
        (
            _edit("spec.trainer.numNodes", 0),
            {},
            f"{W}.spec.trainer.numNodes: must be a whole number of at least 1",
        ),
        (
            TRAINJOB,
            {"primaryPod": {"container": "trainer"}},
            "spec.workload.primaryPod.container: a TrainJob's trial container is 'node'",
        ),
        (
            TRAINJOB,
            {"podTemplates": ["spec.template"]},
            "spec.workload.podTemplates: only for a kind kubetune does not know",
        ),
    ],
    ids=[
        "version",
        "runtimeRef",
        "runtimeKind",
        "runtimePatches",
        "targetsNothing",
        "overrideField",
        "nodeEnv",
        "containerField",
        "numNodes",
        "container",
        "podTemplates",
    ],
)
def test_bad_trainjobs_are_refused_naming_the_field(
    obj: dict[str, Any], workload: dict[str, Any], problem: str
) -> None:
    sweep = _sweep(obj, workload)
    problems = semantic_problems(sweep)
    assert problems and problems[0].startswith(problem), problems
    with pytest.raises(BuildError) as refused:
        _build(obj, sweep=sweep)
    assert str(refused.value).startswith(problem)


def test_trainer_job_is_only_for_a_trainjob_and_trial_timeout_is_refused() -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": {"spec": {"containers": [{"name": "t", "image": "i:1"}]}}},
    }
    assert semantic_problems(_sweep(job, {"trainerJob": "node"}))[0].startswith(
        "spec.workload.trainerJob: only for a trainer.kubeflow.org TrainJob"
    )
    timed = parse_sweep(
        {
            **_sweep(TRAINJOB).model_dump(by_alias=True, exclude_none=True),
            "spec": {
                **_sweep(TRAINJOB).spec.model_dump(by_alias=True, exclude_none=True),
                "budget": {"maxTrials": 2, "trialTimeout": "10m"},
            },
        }
    )
    assert semantic_problems(timed) == [
        "spec.budget.trialTimeout: not with a TrainJob workload: the TrainJob API cannot give "
        "its pods a deadline (set activeDeadlineSeconds on the Jobs of its TrainingRuntime "
        "instead, and leave trialTimeout out)"
    ]
    assert semantic_problems(_sweep(TRAINJOB)) == []
