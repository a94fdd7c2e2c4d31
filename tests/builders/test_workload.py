"""Trial Jobs (spec.workload): the object kubetune creates per trial, compared as dicts."""

import copy
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.contract import ATTEMPT_ANNOTATION, CONTAINER_ANNOTATION
from kubetune.builders.errors import BuildError
from kubetune.builders.workload import build_trial, build_trial_workload
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep
from kubetune.spec.checks import semantic_problems, semantic_warnings

JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"labels": {"team": "nlp"}, "annotations": {"note": "${sweep.name}"}},
    "spec": {
        "backoffLimit": 4,
        "activeDeadlineSeconds": 60,
        "template": {
            "metadata": {"labels": {"app": "tune"}},
            "spec": {
                "containers": [
                    {"name": "sidecar", "image": "busybox", "command": ["sleep", "1"]},
                    {
                        "name": "train",
                        "image": "ghcr.io/example/train:1",
                        "args": ["--lr=${params.lr}", "--out=/out/${trial.name}"],
                        "env": [{"name": "NUMBER", "value": "${trial.number}"}],
                    },
                ],
                "volumes": [{"name": "out", "emptyDir": {}}],
                "nodeSelector": {"pool": "${sweep.name}-gpu"},
            },
        },
    },
}


def _spec(**extra: Any) -> dict[str, Any]:
    return {
        "parameters": [{"name": "lr", "type": "float", "min": 0.001, "max": 0.1}],
        "budget": {"maxTrials": 2, "trialTimeout": "10m"},
        "workload": {"object": copy.deepcopy(JOB), "primaryPod": {"container": "train"}},
        **extra,
    }


def _sweep(spec: dict[str, Any]) -> HyperparameterSweep:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "jobs", "namespace": "team"},
            "spec": spec,
        }
    )


def _build(spec: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    sweep = _sweep(spec)
    return build_trial_workload(sweep, effective_spec(sweep.spec), 3, {"lr": 0.01}, **kwargs)


def test_job_carries_kubetune_labels_on_object_and_pod_template() -> None:
    job = _build(_spec(), attempt=2)
    trial = conventions.trial_name("jobs", 3)
    assert job["metadata"]["name"] == trial
    assert job["metadata"]["namespace"] == "team"
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels[conventions.LABEL_SWEEP] == "jobs"
        assert labels[conventions.LABEL_TRIAL] == trial
        assert labels[conventions.LABEL_MANAGED_BY] == conventions.MANAGED_BY
    assert job["metadata"]["labels"]["team"] == "nlp"
    assert job["spec"]["template"]["metadata"]["labels"]["app"] == "tune"
    assert "name" not in job["spec"]["template"]["metadata"]  # the Job controller names pods
    pod_notes = job["spec"]["template"]["metadata"]["annotations"]
    assert pod_notes[ATTEMPT_ANNOTATION] == "2"
    assert pod_notes[CONTAINER_ANNOTATION] == "train"
    assert job["metadata"]["annotations"][ATTEMPT_ANNOTATION] == "2"


def test_job_runs_its_pod_once_with_the_trial_timeout_on_the_pod() -> None:
    job = _build(_spec())
    assert job["spec"]["backoffLimit"] == 0
    assert "activeDeadlineSeconds" not in job["spec"]
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["activeDeadlineSeconds"] == 600
    assert pod_spec["restartPolicy"] == "Never"
    assert "suspend" not in job["spec"]


def test_every_placeholder_is_substituted_in_every_string() -> None:
    job = _build(_spec())
    trial = conventions.trial_name("jobs", 3)
    pod_spec = job["spec"]["template"]["spec"]
    train = pod_spec["containers"][1]
    assert train["args"] == ["--lr=0.01", f"--out=/out/{trial}"]
    env = {v["name"]: v.get("value") for v in train["env"]}
    assert env["NUMBER"] == "3"
    assert job["metadata"]["annotations"]["note"] == "jobs"
    assert pod_spec["nodeSelector"] == {"pool": "jobs-gpu"}


def test_trial_container_gets_the_contract_and_the_metrics_port() -> None:
    job = _build(_spec())
    sidecar, train = job["spec"]["template"]["spec"]["containers"]
    env = {v["name"]: v for v in train["env"]}
    assert env[conventions.ENV_PARAMS]["value"] == '{"lr": 0.01}'
    assert env[conventions.ENV_TRIAL]["value"] == conventions.trial_name("jobs", 3)
    assert env[conventions.ENV_METRICS_ADDR]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "status.podIP"
    )
    assert any(p.get("name") == "metrics" for p in train["ports"])
    assert train["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "env" not in sidecar
    # hardening reaches every container of the pod template
    for container in (sidecar, train):
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_queue_name_labels_the_job_and_creates_it_suspended() -> None:
    job = _build(_spec(queueName="gpu-queue"))
    assert job["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "gpu-queue"
    assert job["spec"]["suspend"] is True
    # Kueue admits the Job; its pods are not gated a second time.
    assert conventions.LABEL_KUEUE_QUEUE not in job["spec"]["template"]["metadata"]["labels"]


def test_policy_refuses_a_privileged_job_pod_naming_the_workload_field() -> None:
    spec = _spec()
    containers = spec["workload"]["object"]["spec"]["template"]["spec"]["containers"]
    containers[1]["securityContext"] = {"privileged": True}
    with pytest.raises(BuildError) as caught:
        _build(spec, policy=PodPolicy())
    assert caught.value.field == (
        "spec.workload.object.spec.template.spec.containers[1].securityContext.privileged"
    )
    privileged = PodPolicy(level="privileged")
    assert _build(spec, policy=privileged)["spec"]["template"]["spec"]["containers"][1]


def test_unknown_placeholders_name_the_field() -> None:
    spec = _spec()
    spec["workload"]["object"]["metadata"]["labels"]["x"] = "${trial.id}"
    with pytest.raises(BuildError, match=r"\$\{trial.id\} is no placeholder") as caught:
        _build(spec)
    assert caught.value.field == "spec.workload.object.metadata.labels.x"
    spec = _spec()
    spec["workload"]["object"]["spec"]["template"]["spec"]["containers"][0]["args"] = [
        "${params.nope}"
    ]
    problems = semantic_problems(_sweep(spec))
    assert problems == [
        "spec.workload.object.spec.template.spec.containers[0].args[0]: "
        "${params.nope} names no parameter (known: lr)"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda o: o.update(kind="MPIJob", apiVersion="kubeflow.org/v2beta1"),
            "spec.workload.podTemplates: required: kubeflow.org/v2beta1 MPIJob is a kind "
            "kubetune does not know (it knows batch/v1 Job, jobset.x-k8s.io/v1alpha2 JobSet, "
            "kubeflow.org/v1 PyTorchJob, trainer.kubeflow.org/v1alpha1 TrainJob): the field "
            "paths of its pod templates, e.g. spec.template",
        ),
        (
            # The TrainJob rules: tests/builders/test_trainjob.py.
            lambda o: o.update(kind="TrainJob", apiVersion="trainer.kubeflow.org/v1alpha1"),
            "spec.workload.primaryPod.container: a TrainJob's trial container is 'node', the "
            "one spec.trainer reaches (got 'train')",
        ),
        (
            lambda o: o.update(kind="JobSet", apiVersion="jobset.x-k8s.io/v1alpha2"),
            "spec.workload.object.spec.replicatedJobs[].template.spec.template: required: "
            "a pod template with a spec",
        ),
        (
            lambda o: o["spec"].pop("template"),
            "spec.workload.object.spec.template: required: a pod template with a spec",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["containers"][0].pop("image"),
            "spec.workload.object.spec.template.spec.containers[0].image: required",
        ),
    ],
)
def test_bad_workloads_are_refused_naming_the_field(change: Any, expected: str) -> None:
    spec = _spec()
    change(spec["workload"]["object"])
    assert semantic_problems(_sweep(spec)) == [expected]


def test_primary_container_must_exist() -> None:
    spec = _spec()
    spec["workload"]["primaryPod"]["container"] = "trainer"
    assert semantic_problems(_sweep(spec)) == [
        "spec.workload.primaryPod.container: no container named 'trainer' in "
        "spec.workload.object.spec.template.spec.containers (have sidecar, train)"
    ]


def test_exactly_one_trial_source_and_parameters_required() -> None:
    with pytest.raises(Exception, match="set exactly one of trainer, template or workload"):
        _sweep({**_spec(), "template": {"spec": {"containers": [{"name": "a"}]}}})
    with pytest.raises(Exception, match="parameters: required with workload"):
        _sweep({**_spec(), "parameters": []})


def test_unused_parameter_warning_sees_workload_placeholders() -> None:
    assert semantic_warnings(_sweep(_spec())) == []
    spec = _spec()
    spec["workload"]["object"]["spec"]["template"]["spec"]["containers"][1]["args"] = []
    assert len(semantic_warnings(_sweep(spec))) == 1


def test_build_trial_picks_the_job_for_a_workload_sweep() -> None:
    sweep = _sweep(_spec())
    made = build_trial(sweep, effective_spec(sweep.spec), 0, {"lr": 0.01})
    assert made["kind"] == "Job"
