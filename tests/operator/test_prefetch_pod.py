"""The operator's prefetch pod on the simulated cluster: the real `python -m kubetune_trainer
prefetch` in a pod, against the loopback hub (tests/trainer/fake_hub.py) named by HF_ENDPOINT
in trainer.env; a gated model fails the sweep with the hub's reason, and no trial starts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from tests.cluster.cluster import Cluster
from tests.trainer.fake_hub import FakeHub, Repo
from tests.trainer.fake_hub import silent_hub as silent_server

from .helpers import condition, trial_pods, wait_event, wait_phase
from .runner import InProcessOperator

GATED = "kubetune-test/gated-403"


@pytest.fixture
def gated_hub(tmp_path: Path) -> Iterator[FakeHub]:
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    hub = FakeHub({GATED: Repo(folder, gated_status=403)}).start()
    yield hub
    hub.stop()


def _sweep(namespace: str, endpoint: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "gated", "namespace": namespace},
        "spec": {
            "budget": {"maxTrials": 2, "parallelism": 2},
            "parameters": [{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1e-3}],
            "trainer": {
                "image": "kubetune-trainer:test",
                "model": GATED,
                "cache": {"volume": {"emptyDir": {}}},
                "env": [{"name": "HF_ENDPOINT", "value": endpoint}],
            },
        },
    }


def test_a_gated_model_fails_the_sweep_before_any_trial(
    operator: InProcessOperator, crd: Cluster, namespace: str, gated_hub: FakeHub
) -> None:
    applied = crd.kubectl("apply", "-f", "-", input=json.dumps(_sweep(namespace, gated_hub.url)))
    assert applied.returncode == 0, applied.stderr
    failed = wait_phase(crd, namespace, "gated", "Failed", timeout=120)
    cached = condition(failed, "ModelCached")
    assert cached["status"] == "False" and cached["reason"] == "PrefetchFailed"
    assert GATED in cached["message"] and "gated" in cached["message"]
    assert "answered 403" in cached["message"]
    warned = wait_event(crd, namespace, "PrefetchFailed")
    assert len(warned) == 1 and GATED in warned[0] and "gated" in warned[0]
    pods = trial_pods(crd, namespace, "gated")
    assert [p["metadata"]["name"] for p in pods] == [conventions.prefetch_name("gated")]
    labels = pods[0]["metadata"]["labels"]
    assert labels[conventions.LABEL_COMPONENT] == conventions.COMPONENT_PREFETCH
    assert failed.get("history", []) == []  # no trial was ever recorded


@pytest.fixture
def silent_hub() -> Iterator[str]:
    with silent_server() as url:
        yield url


def test_a_prefetch_past_its_deadline_fails_the_sweep(
    operator: InProcessOperator, crd: Cluster, namespace: str, silent_hub: str
) -> None:
    manifest = _sweep(namespace, silent_hub)
    manifest["metadata"]["name"] = "stuck"
    manifest["spec"]["trainer"]["model"] = "kubetune-test/stuck"
    manifest["spec"]["trainer"]["cache"]["prefetchTimeout"] = "3s"
    crd.create(manifest)
    failed = wait_phase(crd, namespace, "stuck", "Failed", timeout=120)
    cached = condition(failed, "ModelCached")
    assert cached["status"] == "False" and cached["reason"] == "PrefetchFailed"
    assert "did not finish within trainer.cache.prefetchTimeout" in cached["message"]
    warned = wait_event(crd, namespace, "PrefetchFailed")
    assert len(warned) == 1 and "prefetchTimeout" in warned[0]
    (pod,) = trial_pods(crd, namespace, "stuck")
    assert pod["spec"]["activeDeadlineSeconds"] == 3
    assert pod["status"]["reason"] == "DeadlineExceeded"  # the kubelet enforced it
    assert failed.get("history", []) == []
