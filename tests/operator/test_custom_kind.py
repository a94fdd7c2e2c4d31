"""A trial workload of a kind kubetune does not know (spec.workload with podTemplates and
success and failure conditions) on the test cluster: example.dev/v1 TrainingRun, a CRD
registered for the tests, run by the stand-in controller tests/cluster/custom_kind.py. Its
pods reach kubetune only through the pod template paths the sweep gives; its ending only
through the sweep's conditions (a condition type for success, a status field for failure)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from tests.cluster.cluster import Cluster

from .helpers import history, trial_pods, wait_event, wait_phase
from .runner import InProcessOperator, sweep_manifest

FAST = {"STEPS": "5", "STEP_SECONDS": "0.1"}
TESTDATA = Path(__file__).resolve().parents[1] / "cluster" / "testdata"
RUNS = {"group": "example.dev", "version": "v1"}


@pytest.fixture(scope="module")
def runs(crd: Cluster) -> Iterator[Cluster]:
    crd.apply_crd(TESTDATA / "trainingruns-crd.yaml")
    yield crd
    assert crd.custom.errors == []


@pytest.fixture(scope="module")
def running(runs: Cluster) -> Iterator[InProcessOperator]:
    with InProcessOperator(runs.kubeconfig) as operator:
        yield operator


def _with_env(template: dict[str, Any], **env: str) -> dict[str, Any]:
    template = copy.deepcopy(template)
    container = template["spec"]["containers"][0]
    container["env"] = [*container["env"], *({"name": k, "value": v} for k, v in env.items())]
    return template


def run_sweep(name: str, namespace: str, **worker_env: str) -> dict[str, Any]:
    manifest = sweep_manifest(name, namespace, env=FAST, max_trials=1, parallelism=1)
    template = manifest["spec"].pop("template")
    manifest["spec"]["budget"]["maxFailedTrials"] = 0
    manifest["spec"]["workload"] = {
        "object": {
            "apiVersion": "example.dev/v1",
            "kind": "TrainingRun",
            "spec": {
                "leader": {"template": _with_env(template, STEPS="20")},
                "workers": {"replicas": 1, "template": _with_env(template, **worker_env)},
            },
        },
        "podTemplates": ["spec.leader.template", "spec.workers.template"],
        "primaryPod": {"container": "trial", "labels": {"example.dev/role": "leader"}},
        "successCondition": {"type": "Done"},
        "failureCondition": {"field": "status.phase", "equals": "Failed"},
    }
    return manifest


def test_a_custom_kind_trial_runs_its_pods_and_succeeds_once(
    running: InProcessOperator, runs: Cluster, namespace: str
) -> None:
    runs.create(run_sweep("tr", namespace))
    final = wait_phase(runs, namespace, "tr", "Succeeded", "Failed", timeout=120)
    assert final["phase"] == "Succeeded", final
    records = history(final)
    assert list(records) == [0]
    assert records[0]["s"] == "Succeeded" and records[0]["v"], records[0]
    trial = conventions.trial_name("tr", 0)
    pods = trial_pods(runs, namespace, "tr")
    assert sorted(p["metadata"]["labels"]["example.dev/role"] for p in pods) == [
        "leader",
        "worker",
    ]
    for pod in pods:  # both templates got kubetune's labels and the trial contract
        assert pod["metadata"]["labels"][conventions.LABEL_TRIAL] == trial
        env = {v["name"] for v in pod["spec"]["containers"][0]["env"]}
        assert conventions.ENV_PARAMS in env
        assert pod["status"].get("startTime"), pod["metadata"]["name"]
    run = runs.get("trainingruns", trial, namespace, **RUNS)
    assert run is not None and run["status"]["phase"] == "Succeeded", run
    owner = run["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"]) == ("HyperparameterSweep", "tr")


def test_a_custom_kind_failure_condition_fails_the_trial_once(
    running: InProcessOperator, runs: Cluster, namespace: str
) -> None:
    # The worker fails; the controller sets phase Failed and deletes the still-running leader,
    # which alone would look like a disruption (and be rerun).
    runs.create(run_sweep("trfail", namespace, FAIL_AT="2"))
    final = wait_phase(runs, namespace, "trfail", "Failed", "Succeeded", timeout=120)
    records = history(final)
    assert list(records) == [0]
    assert records[0]["s"] == "Failed", records[0]
    assert records[0]["r"] == "WorkloadFailed: status.phase=Failed", records[0]
    assert not records[0].get("rq")  # not taken for a disruption and rerun


def test_a_custom_kind_the_cluster_does_not_serve_fails_with_a_clear_reason(
    running: InProcessOperator, runs: Cluster, namespace: str
) -> None:
    manifest = run_sweep("trmissing", namespace)
    manifest["spec"]["workload"]["object"]["kind"] = "TrainingRunV9"  # no CRD serves it
    runs.create(manifest)
    final = wait_phase(runs, namespace, "trmissing", "Failed", "Succeeded", timeout=60)
    record = history(final)[0]
    assert record["s"] == "Failed" and record["r"].startswith("CreateRefused: HTTP 404"), record
    refused = " ".join(wait_event(runs, namespace, "CreateRefused"))
    assert "the cluster serves no example.dev/v1 TrainingRunV9 (is its CRD installed?)" in refused


def test_deleting_the_sweep_deletes_its_running_custom_workload_and_its_pods(
    running: InProcessOperator, runs: Cluster, namespace: str
) -> None:
    manifest = run_sweep("trdel", namespace)
    obj = manifest["spec"]["workload"]["object"]["spec"]
    for role in ("leader", "workers"):
        obj[role]["template"] = _with_env(obj[role]["template"], STEPS="300")
    runs.create(manifest)
    runs.wait_for(
        lambda: len(trial_pods(runs, namespace, "trdel")) == 2 or None,
        timeout=30,
        message="both pods",
    )
    runs.delete("hyperparametersweeps", "trdel", namespace, group="kubetune.dev")
    trial = conventions.trial_name("trdel", 0)
    runs.wait_for_deletion("trainingruns", trial, namespace=namespace, group="example.dev")
    runs.wait_for(
        lambda: not trial_pods(runs, namespace, "trdel") or None, timeout=30, message="no pods"
    )
