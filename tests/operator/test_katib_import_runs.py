"""`kubetune import-katib` output runs: Katib-shaped Experiments written for the tests (a batch/v1
Job trialTemplate with Katib's default StdOut collector, and a PyTorchJob one) are converted
and the resulting sweeps run in the test cluster to a finished state, every trial scored from
the `name=value` lines its primary container prints."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune.katib import convert
from tests.cluster.cluster import Cluster

from .helpers import history, wait_phase
from .runner import InProcessOperator

pytestmark = pytest.mark.slow
LOG_TRIAL = Path(__file__).resolve().parents[1] / "local" / "log_trial.py"
TESTDATA = Path(__file__).resolve().parents[1] / "cluster" / "testdata"


def _container(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": "docker.io/kubeflowkatib/log-trial:latest",
        "command": [
            "python",
            str(LOG_TRIAL),
            "--x=${trialParameters.x}",
            "--epochs=3",
            "--sleep=0.05",
        ],
    }


def _experiment(name: str, trial_spec: dict[str, Any], container: str) -> dict[str, Any]:
    """A Katib Experiment as its users write one: random search over x, 2 trials, no collector
    (Katib's default: name=value lines on stdout)."""
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": "kubeflow"},
        "spec": {
            "objective": {"type": "minimize", "objectiveMetricName": "loss"},
            "algorithm": {"algorithmName": "random"},
            "parallelTrialCount": 2,
            "maxTrialCount": 2,
            "maxFailedTrialCount": 0,
            "parameters": [
                {
                    "name": "x",
                    "parameterType": "double",
                    "feasibleSpace": {"min": "0.1", "max": "0.5"},
                }
            ],
            "trialTemplate": {
                "primaryContainerName": container,
                "trialParameters": [{"name": "x", "description": "x", "reference": "x"}],
                "trialSpec": trial_spec,
            },
        },
    }


JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "spec": {
        "template": {"spec": {"containers": [_container("training")], "restartPolicy": "Never"}}
    },
}
PYTORCH = {
    "apiVersion": "kubeflow.org/v1",
    "kind": "PyTorchJob",
    "spec": {
        "pytorchReplicaSpecs": {
            "Master": {
                "replicas": 1,
                "restartPolicy": "OnFailure",
                "template": {"spec": {"containers": [_container("pytorch")]}},
            },
            "Worker": {
                "replicas": 1,
                "restartPolicy": "OnFailure",
                "template": {"spec": {"containers": [_container("pytorch")]}},
            },
        }
    },
}


@pytest.fixture(scope="module")
def katib_cluster(crd: Cluster) -> Iterator[Cluster]:
    crd.apply_crd(TESTDATA / "pytorchjobs-crd.yaml")
    yield crd


@pytest.fixture(scope="module")
def running(katib_cluster: Cluster) -> Iterator[InProcessOperator]:
    with InProcessOperator(katib_cluster.kubeconfig) as operator:
        yield operator


def _run(cluster: Cluster, namespace: str, experiment: dict[str, Any]) -> dict[str, Any]:
    conversion = convert(copy.deepcopy(experiment))
    assert conversion.unmapped == []
    sweep = conversion.sweep
    sweep["metadata"]["namespace"] = namespace
    cluster.create(sweep)
    name = sweep["metadata"]["name"]
    return wait_phase(cluster, namespace, name, "Succeeded", "Failed", timeout=120)


@pytest.mark.parametrize(
    ("trial_spec", "container", "source"),
    [(JOB, "training", "template"), (PYTORCH, "pytorch", "workload")],
    ids=["job", "pytorchjob"],
)
def test_an_imported_katib_experiment_runs_to_its_end(
    running: InProcessOperator,
    katib_cluster: Cluster,
    namespace: str,
    trial_spec: dict[str, Any],
    container: str,
    source: str,
) -> None:
    experiment = _experiment(f"katib-{source}", trial_spec, container)
    assert source in convert(copy.deepcopy(experiment)).sweep["spec"]
    final = _run(katib_cluster, namespace, experiment)
    assert final["phase"] == "Succeeded", final
    records = history(final)
    assert sorted(records) == [0, 1]
    for record in records.values():
        assert record["s"] == "Succeeded", record
        x = record["p"]["x"]
        # log_trial.py prints loss = (x - 0.3)^2 + 0.1 each epoch: scored from the log.
        assert record["v"] == [pytest.approx((x - 0.3) ** 2 + 0.1, abs=1e-5)]
