"""A pod the API server refuses (here: the namespace's Pod Security admission, stricter than
the operator's own policy) is a condition and a Warning Event, and fails its trial for good
after a few tries instead of being retried forever while the sweep says "0 running"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubetune.operator.config import OperatorConfig
from kubetune.policy.pod_policy import PodPolicy
from tests.cluster.cluster import Cluster

from .helpers import condition, history, wait_event, wait_phase, wait_status
from .runner import InProcessOperator, sweep_manifest


@pytest.fixture(scope="module")
def baseline_operator(crd: Cluster) -> Iterator[InProcessOperator]:
    config = OperatorConfig(
        metrics_port=None, idle_interval=5.0, pod_policy=PodPolicy(level="baseline")
    )
    with InProcessOperator(crd.kubeconfig, config) as running:
        yield running


def test_a_pod_refused_by_admission_fails_its_trial_with_the_servers_reason(
    baseline_operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    labelled = crd.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )
    assert labelled.returncode == 0, labelled.stderr
    manifest = sweep_manifest("net-raw", namespace, max_trials=1, parallelism=1)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    # Baseline (the operator's policy) allows CHOWN; restricted (the namespace's) does not.
    container["securityContext"] = {"capabilities": {"add": ["CHOWN"]}}
    manifest["spec"]["budget"]["maxFailedTrials"] = 0
    crd.create(manifest)
    stuck = wait_status(
        crd,
        namespace,
        "net-raw",
        lambda s: condition(s, "TrialsStarted").get("reason") == "CreateRefused",
        what="TrialsStarted=False, CreateRefused",
    )
    assert "HTTP 403" in condition(stuck, "TrialsStarted")["message"]
    final = wait_phase(crd, namespace, "net-raw", "Failed", "Succeeded", timeout=60)
    record = history(final)[0]
    assert record["s"] == "Failed" and record["r"].startswith("CreateRefused: HTTP 403")
    assert len(record["r"]) <= 80, "history keeps a short reason; the Event has the rest"
    refused = " ".join(wait_event(crd, namespace, "CreateRefused"))
    assert "violates PodSecurity" in refused
    assert not crd.list_objects("pods", namespace=namespace)
