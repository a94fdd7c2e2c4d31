"""trainer.nodes: 2 through a JobSet, on a test cluster that serves the JobSet API (its CRD
from testdata/), with the real trainer (torchrun, gloo on CPU).

The operator discovers jobset.x-k8s.io/v1alpha2 (--nodes-workload auto), records JobSet on
the sweep, and creates the trial as a JobSet of one Indexed Job of 2 pods; the JobSet
stand-in (tests/cluster/training.py) makes its headless Service and gives the pods
`<trial>-node-0-<index>.<trial>` DNS names, which the kubelet stand-in resolves; torchrun's
static rendezvous joins the pods, and global rank 0 in pod 0 reports the one result. No
sweep Service (the Indexed Job path's) is made. Without the CRD, the same sweep runs as an
Indexed Job (tests/operator/test_several_nodes.py, whose cluster serves no JobSet).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.nodes import JOBSET_REPLICATED_JOB
from kubetune.operator.config import OperatorConfig
from kubetune.operator.nodes_shape import NODES_WORKLOAD_ANNOTATION
from kubetune_trainer.config import default_cache_dir
from tests.cluster.cluster import Cluster

from .helpers import history, trial_pods, wait_phase
from .runner import InProcessOperator
from .test_several_nodes import nodes_sweep

pytestmark = pytest.mark.slow

TESTDATA = Path(__file__).resolve().parents[1] / "cluster" / "testdata"
INDEX = "batch.kubernetes.io/job-completion-index"


@pytest.fixture(scope="module")
def jobset_operator(crd: Cluster) -> Iterator[InProcessOperator]:
    from kubetune_trainer import tiny

    crd.apply_crd(TESTDATA / "jobsets-crd.yaml")
    cache = default_cache_dir(os.environ)
    tiny.ensure_tiny(cache)
    assert crd.kubelet is not None
    crd.kubelet.extra_env[conventions.ENV_CACHE_DIR] = str(cache)
    config = OperatorConfig(metrics_port=None, idle_interval=2.0, default_image="trainer:test")
    # Started after the CRD exists: kopf watches what the cluster serves.
    with InProcessOperator(crd.kubeconfig, config) as running:
        yield running


def _jobsets(cluster: Cluster, namespace: str, sweep: str) -> list[dict[str, Any]]:
    selector = f"{conventions.LABEL_SWEEP}={sweep}"
    return cluster.list_objects(
        "jobsets", namespace, group="jobset.x-k8s.io", label_selector=selector
    )


def test_two_node_trial_runs_as_a_jobset_where_the_api_is_served(
    jobset_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.create(nodes_sweep("js", namespace, 2))
    final = wait_phase(crd, namespace, "js", "Succeeded", "Failed", timeout=300)
    assert final["phase"] == "Succeeded", history(final)
    [record] = history(final).values()
    assert record["s"] == "Succeeded" and not record.get("rq"), record
    assert record["v"][0] > 0

    trial = conventions.trial_name("js", 0)
    (jobset,) = _jobsets(crd, namespace, "js")
    assert jobset["metadata"]["name"] == trial
    assert jobset["spec"]["network"]["subdomain"] == trial

    # The sweep ends with its primary pod's result; the JobSet's own status may come later.
    def completed() -> bool:
        (jobset,) = _jobsets(crd, namespace, "js")
        conditions = (jobset.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Completed" for c in conditions)

    crd.wait_for(completed, timeout=30, message="the JobSet Completed")
    # The choice is recorded on the sweep: a restarted operator keeps it.
    sweep = crd.get("hyperparametersweeps", "js", namespace, group="kubetune.dev")
    assert sweep is not None
    assert sweep["metadata"]["annotations"][NODES_WORKLOAD_ANNOTATION] == "JobSet"

    pods = sorted(trial_pods(crd, namespace, "js"), key=lambda p: p["metadata"]["labels"][INDEX])
    assert [p["spec"]["hostname"] for p in pods] == [
        f"{trial}-{JOBSET_REPLICATED_JOB}-0-{i}" for i in range(2)
    ]
    assert all(p["spec"]["subdomain"] == trial for p in pods)
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    # Both pods rendezvoused at pod 0's JobSet DNS name; rank 0 alone reported.
    assert crd.kubelet is not None
    logs = [crd.kubelet.read_logs(namespace, p["metadata"]["name"]) for p in pods]
    assert "succeeded after 4 steps" in logs[0] and "succeeded after 4 steps" not in logs[1]
    # JobSet's own headless Service, owned by the JobSet; not the Indexed Job path's.
    service = crd.get("services", trial, namespace)
    assert service is not None and service["spec"]["clusterIP"] == "None"
    assert service["metadata"]["ownerReferences"][0]["kind"] == "JobSet"
    assert crd.get("services", conventions.rendezvous_service("js"), namespace) is None


def test_the_kind_recorded_on_a_sweep_wins_over_discovery(
    jobset_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    """As after an operator restart (or a JobSet installed meanwhile): a sweep that recorded
    Job keeps running its trials as Indexed Jobs although the JobSet API is served."""
    manifest = nodes_sweep("kept", namespace, 2)
    manifest["metadata"]["annotations"] = {NODES_WORKLOAD_ANNOTATION: "Job"}
    crd.create(manifest)
    final = wait_phase(crd, namespace, "kept", "Succeeded", "Failed", timeout=300)
    assert final["phase"] == "Succeeded", history(final)
    assert _jobsets(crd, namespace, "kept") == []
    selector = f"{conventions.LABEL_SWEEP}=kept"
    (job,) = crd.list_objects("jobs", namespace, group="batch", label_selector=selector)
    assert job["spec"]["completionMode"] == "Indexed"
    assert crd.get("services", conventions.rendezvous_service("kept"), namespace) is not None
