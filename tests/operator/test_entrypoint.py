"""`python -m kubetune.operator` as the Helm chart runs it: liveness and metrics endpoints."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from kubetune import metric_names
from tests.cluster.cluster import Cluster
from tests.cluster.prometheus import free_port

from .helpers import wait_phase
from .runner import SubprocessOperator, sweep_manifest


def _get(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                body: str = answer.read().decode()
                return body
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_liveness_and_operator_metrics(crd: Cluster, namespace: str, tmp_path: Path) -> None:
    liveness, metrics = free_port(), free_port()
    operator = SubprocessOperator(
        crd.env(), tmp_path / "operator.log", liveness_port=liveness, metrics_port=metrics
    ).start()
    try:
        _get(f"http://127.0.0.1:{liveness}/healthz")
        env = {"STEPS": "3", "STEP_SECONDS": "0.1"}
        crd.create(sweep_manifest("served", namespace, env=env, max_trials=3, parallelism=1))
        wait_phase(crd, namespace, "served", "Succeeded", timeout=60)
        time.sleep(1)
        text = _get(f"http://127.0.0.1:{metrics}/metrics")
    finally:
        operator.stop()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[(metric_names.SWEEPS, (("phase", "Succeeded"),))] >= 1
    key = (("namespace", namespace), ("state", "succeeded"), ("sweep", "served"))
    assert samples[(metric_names.TRIALS, key)] == 3
    assert (
        metric_names.SWEEP_BEST_VALUE,
        (("namespace", namespace), ("sweep", "served")),
    ) in samples
    assert samples[(metric_names.RECONCILE_SECONDS + "_count", ())] > 0
    # One at a time: trial 0 ending starts trial 1, trial 1 ending starts trial 2.
    assert samples[(metric_names.TRIAL_TURNOVER_SECONDS + "_count", ())] == 2
