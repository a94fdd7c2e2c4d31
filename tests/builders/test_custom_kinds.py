"""Workloads of a kind kubetune does not know: the sweep says where the pod templates are,
which pod is the primary one and when the object succeeded or failed (spec/status_match.py).
Validation names the field; hostile conditions cannot make the operator run an expression;
the builder reaches every given pod template; job_view judges the object by the conditions."""

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from kubetune import conventions
from kubetune.builders.contract import PRIMARY_ANNOTATION, WORKLOAD_ANNOTATION
from kubetune.builders.security import PolicyRefused
from kubetune.builders.workload import build_trial_workload
from kubetune.operator.pod_state import job_view
from kubetune.spec import effective_spec, parse_sweep
from kubetune.spec.checks import semantic_problems
from kubetune.spec.errors import SpecError
from kubetune.spec.status_match import StatusMatch, path_problem, resolve
from kubetune.spec.workload_rules import workload_kind


def _template(role: str) -> dict[str, Any]:
    container = {"name": "train", "image": "ghcr.io/example/train:1", "args": ["--lr=${params.lr}"]}
    return {"metadata": {"labels": {"role": role}}, "spec": {"containers": [container]}}


RUN: dict[str, Any] = {
    "apiVersion": "example.dev/v1",
    "kind": "TrainingRun",
    "spec": {
        "leader": {"template": _template("leader")},
        "workers": {"replicas": 2, "template": _template("worker")},
    },
}
WORKLOAD: dict[str, Any] = {
    "object": RUN,
    "podTemplates": ["spec.leader.template", "spec.workers.template"],
    "primaryPod": {"labels": {"example.dev/role": "leader"}},
    "successCondition": {"type": "Done"},
    "failureCondition": {"field": "status.phase", "equals": "Failed"},
}


def _manifest(workload: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "cust", "namespace": "team"},
        "spec": {
            "parameters": [{"name": "lr", "type": "float", "min": 0.001, "max": 0.1}],
            "workload": copy.deepcopy(workload),
            **extra,
        },
    }


def _problems(workload: dict[str, Any], **extra: Any) -> list[str]:
    return semantic_problems(parse_sweep(_manifest(workload, **extra)))


def test_a_described_custom_kind_is_valid() -> None:
    assert _problems(WORKLOAD) == []


@pytest.mark.parametrize(
    ("drop", "field"),
    [
        ("podTemplates", "spec.workload.podTemplates: required"),
        ("successCondition", "spec.workload.successCondition: required"),
        ("failureCondition", "spec.workload.failureCondition: required"),
        ("primaryPod", "spec.workload.primaryPod.labels: required with more than one"),
    ],
)
def test_an_undescribed_custom_kind_names_the_missing_field(drop: str, field: str) -> None:
    workload = {k: v for k, v in WORKLOAD.items() if k != drop}
    (problem,) = _problems(workload)
    assert problem.startswith(field), problem
    if drop != "primaryPod":
        assert "example.dev/v1 TrainingRun is a kind kubetune does not know" in problem


def test_a_pod_template_path_must_lead_to_a_template() -> None:
    workload = {**WORKLOAD, "podTemplates": ["spec.leader.template", "spec.helpers.template"]}
    assert _problems(workload) == [
        "spec.workload.podTemplates: spec.helpers.template is no pod template (a mapping) in "
        "spec.workload.object"
    ]


def test_conditions_on_a_known_kind_are_refused() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": _template("x")}}
    (problem,) = _problems({"object": job, "successCondition": {"type": "Complete"}})
    assert problem.startswith("spec.workload.successCondition: only for a kind kubetune does")


def test_a_custom_kind_cannot_be_queued_in_kueue() -> None:
    (problem,) = _problems(WORKLOAD, queueName="team-a")
    assert problem.startswith("spec.queueName: kubetune cannot hold a TrainingRun suspended")


def test_a_core_kind_is_no_custom_resource() -> None:
    obj = {**RUN, "apiVersion": "v1", "kind": "Pod"}
    (problem,) = _problems({**WORKLOAD, "object": obj})
    assert problem.startswith("spec.workload.object.apiVersion: must be group/version")


@pytest.mark.parametrize(
    "match",
    [
        {"field": 'status.conditions.#(type=="Complete")#', "equals": "x"},  # GJSON
        {"field": "status.phase|@reverse", "equals": "x"},
        {"field": "metadata.name", "equals": "x"},  # only the status
        {"field": ".".join(["status"] * 13), "equals": "x"},  # bounded depth
        {"field": "status.phase"},  # no value to compare
        {"type": "Done", "field": "status.phase", "equals": "x"},  # two forms
        {"type": "Done; rm -rf /"},
        {"type": "Done", "status": "Maybe"},
        {"type": "Done", "equals": "x"},
    ],
)
def test_hostile_or_malformed_conditions_are_refused(match: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        StatusMatch.model_validate(match)


def test_hostile_pod_template_paths_are_refused() -> None:
    assert path_problem("spec.template") is None
    assert path_problem("spec.replicatedJobs[0].template.spec.template") is None
    assert path_problem("spec.*.template") is not None
    assert path_problem("status.template", under="spec") == "must start with spec."
    bad = {**WORKLOAD, "podTemplates": ["spec..template"]}
    with pytest.raises(SpecError) as error:
        parse_sweep(_manifest(bad))
    assert error.value.problems[0].startswith("spec.workload.podTemplates: [0] 'spec..template'")


def test_matches_read_only_the_named_condition_or_field() -> None:
    obj = {"status": {"phase": "Failed", "conditions": [{"type": "Done", "status": "False"}]}}
    assert StatusMatch(field="status.phase", equals="Failed").matches(obj)
    assert not StatusMatch(type="Done").matches(obj)
    assert StatusMatch(type="Done", status="False").matches(obj)
    assert not StatusMatch(field="status.phase", equals="Succeeded").matches({"status": None})
    assert resolve({"spec": {"a": [{"b": 1}]}}, "spec.a[0].b") == 1
    assert resolve({"spec": {"a": []}}, "spec.a[3].b") is None


def test_every_given_pod_template_becomes_a_trial_pod_template() -> None:
    sweep = parse_sweep(_manifest(WORKLOAD))
    made = build_trial_workload(sweep, effective_spec(sweep.spec), 1, {"lr": 0.01})
    trial = conventions.trial_name("cust", 1)
    assert made["metadata"]["name"] == trial
    assert made["metadata"]["labels"][conventions.LABEL_TRIAL] == trial
    for path in ("leader", "workers"):
        meta = made["spec"][path]["template"]["metadata"]
        assert meta["labels"][conventions.LABEL_TRIAL] == trial
        assert meta["labels"]["role"] in ("leader", "worker")
        assert meta["annotations"][WORKLOAD_ANNOTATION] == "example.dev/v1/TrainingRun"
        assert meta["annotations"][PRIMARY_ANNOTATION] == "example.dev/role=leader"
        container = made["spec"][path]["template"]["spec"]["containers"][0]
        assert container["args"] == ["--lr=0.01"]
    # Run as written: kubetune knows no retry or suspend field of this kind.
    assert made["spec"]["workers"]["replicas"] == 2 and "suspend" not in made["spec"]


def _trial_object(status: dict[str, Any]) -> dict[str, Any]:
    sweep = parse_sweep(_manifest(WORKLOAD))
    made = build_trial_workload(sweep, effective_spec(sweep.spec), 0, {"lr": 0.01})
    made["metadata"]["uid"] = "u-1"
    return {**made, "status": status}


def test_job_view_judges_a_custom_kind_by_the_sweeps_conditions() -> None:
    sweep = parse_sweep(_manifest(WORKLOAD))
    assert sweep.spec.workload is not None
    kind = workload_kind(sweep.spec.workload)
    assert job_view(_trial_object({"phase": "Running"}), kind) is None
    failed = job_view(_trial_object({"phase": "Failed"}), kind)
    assert failed is not None and failed.kind == "ended" and failed.ending is not None
    assert failed.ending.workload_failed == "status.phase=Failed"
    assert failed.uid == "u-1" and failed.workload == "example.dev/v1/TrainingRun"
    done = {"conditions": [{"type": "Done", "status": "True", "reason": "LeaderSucceeded"}]}
    succeeded = job_view(_trial_object(done), kind)
    assert succeeded is not None and succeeded.ending is not None
    assert succeeded.ending.exit_code == 0 and succeeded.ending.workload_failed is None
    # Without the sweep's description, the operator does not judge a kind it does not know.
    assert job_view(_trial_object({"phase": "Failed"})) is None


def test_a_pod_template_left_out_of_pod_templates_is_refused() -> None:
    # A tenant lists only the leader: the worker's privileged pod would escape the pod policy.
    workload = copy.deepcopy(WORKLOAD)
    workload["podTemplates"] = ["spec.leader.template"]
    workload["primaryPod"] = {}
    worker = workload["object"]["spec"]["workers"]["template"]["spec"]
    worker["containers"][0]["securityContext"] = {"privileged": True}
    assert _problems(workload) == [
        "spec.workload.object.spec.workers.template.spec: a pod spec (it lists containers) "
        "outside the pod templates in spec.workload.podTemplates: list its template there, so "
        "the pod policy reaches it"
    ]
    # Hidden deeper, in a list, or not wrapped in a template: found all the same.
    workload["object"]["spec"]["workers"] = {"sets": [{"pod": {"containers": []}}]}
    (problem,) = _problems(workload)
    assert problem.startswith("spec.workload.object.spec.workers.sets[0].pod: a pod spec")


def test_listed_pod_templates_reach_the_pod_policy() -> None:
    workload = copy.deepcopy(WORKLOAD)
    worker = workload["object"]["spec"]["workers"]["template"]["spec"]
    worker["containers"][0]["securityContext"] = {"privileged": True}
    sweep = parse_sweep(_manifest(workload))
    with pytest.raises(PolicyRefused) as refused:
        build_trial_workload(sweep, effective_spec(sweep.spec), 0, {"lr": 0.01})
    assert "spec.workload.object.spec.workers.template.spec" in str(refused.value)
