"""The operator reads trial metrics through a real Prometheus (PromQL over the HTTP API),
and a Prometheus outage is a visible condition that misjudges no trial."""

from __future__ import annotations

import time
from typing import Any

from kubetune.spec.status import TrialRecord
from tests.cluster.cluster import Cluster
from tests.cluster.prometheus import Prometheus

from .helpers import (
    condition,
    event_reasons,
    history,
    wait_condition,
    wait_phase,
    wait_running,
    wait_status,
)
from .runner import InProcessOperator, sweep_manifest

# No termination message: the final value can only come from Prometheus. Prometheus applies
# discovery changes at most every 5 s, so trials live ~8 s; each lingers after its last step
# so a scrape sees its final values while the pod still runs.
PROM_ONLY = {"STEPS": "8", "STEP_SECONDS": "0.6", "NO_RESULT": "1", "LINGER_SECONDS": "3"}


def _final_loss(record: dict[str, object], steps: int) -> float:
    x = TrialRecord.model_validate(record).params["x"]
    assert isinstance(x, float)
    return (x - 0.3) ** 2 + 1.0 / steps


def _sweep_reading(
    url: str, name: str, namespace: str, *, env: dict[str, str], max_trials: int, parallelism: int
) -> dict[str, Any]:
    """A sweep whose operator reads trial metrics from the Prometheus at url, every second."""
    return sweep_manifest(
        name,
        namespace,
        env=env,
        max_trials=max_trials,
        parallelism=parallelism,
        extra_spec={"metrics": {"prometheus": {"url": url}, "interval": "1s"}},
    )


def test_objective_read_through_promql(
    operator: InProcessOperator, crd: Cluster, namespace: str, prometheus: Prometheus
) -> None:
    crd.create(
        _sweep_reading(
            prometheus.url, "promql", namespace, env=PROM_ONLY, max_trials=3, parallelism=3
        )
    )
    final = wait_phase(crd, namespace, "promql", "Succeeded", "Failed", timeout=90)
    assert final["phase"] == "Succeeded", final
    for record in history(final).values():
        assert record["s"] == "Succeeded"
        # The value Prometheus holds for the trial's last step, to the engine's rounding.
        assert abs(record["v"][0] - _final_loss(record, 8)) < 1e-4, record
        assert record["iv"], "intermediate values were read while it ran"
    assert condition(final, "MetricsAvailable")["status"] == "True"
    series = prometheus.query(f'kubetune_trial_eval_loss{{namespace="{namespace}"}}')
    assert series, "Prometheus scraped the trials through pod discovery"


def test_prometheus_outage_is_a_condition_not_a_failure(
    operator: InProcessOperator, crd: Cluster, namespace: str, prometheus: Prometheus
) -> None:
    crd.create(
        _sweep_reading(
            prometheus.url, "outage", namespace, env=PROM_ONLY, max_trials=4, parallelism=2
        )
    )
    wait_running(crd, namespace, "outage", 2)
    prometheus.stop()
    try:
        down = wait_condition(crd, namespace, "outage", "MetricsAvailable", "False", timeout=30)
        assert condition(down, "MetricsAvailable")["reason"] == "PrometheusUnreachable"
        time.sleep(5)  # trials finish while Prometheus is away: none may be judged now
        during = history(wait_status(crd, namespace, "outage", lambda s: True))
        assert not [r for r in during.values() if r["s"] in ("Failed", "Pruned")], during
    finally:
        prometheus.start()
    final = wait_phase(crd, namespace, "outage", "Succeeded", "Failed", timeout=120)
    assert final["trials"]["failed"] == 0, final
    assert final["phase"] == "Succeeded"
    # A trial whose whole run fell in the outage has no values anywhere: it is rerun.
    records = history(final)
    assert all(r["s"] == "Succeeded" for r in records.values()), records
    assert sorted(records) == [0, 1, 2, 3]
    assert condition(final, "MetricsAvailable")["status"] == "True"
    assert "PrometheusUnreachable" in event_reasons(crd, namespace)


def test_unreachable_prometheus_url_is_a_condition_with_retries(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    env = {"STEPS": "8", "STEP_SECONDS": "0.2"}
    crd.create(_sweep_reading(dead, "nowhere", namespace, env=env, max_trials=2, parallelism=2))
    down = wait_condition(crd, namespace, "nowhere", "MetricsAvailable", "False")
    assert down["phase"] == "Running"
    assert dead in condition(down, "MetricsAvailable")["message"]
    # The termination message still carries every final value: nothing is lost or failed.
    final = wait_phase(crd, namespace, "nowhere", "Succeeded", "Failed", timeout=60)
    assert final["phase"] == "Succeeded" and final["trials"]["failed"] == 0
