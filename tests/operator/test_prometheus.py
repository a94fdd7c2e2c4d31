"""The operator reads trial metrics through a real Prometheus (PromQL over the HTTP API),
and a Prometheus outage is a visible condition that misjudges no trial. Sweeps may name only
the Prometheus URLs the operator allows, and a malformed answer is a condition, not a crash."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubetune.operator.config import OperatorConfig
from kubetune.spec.status import TrialRecord
from tests.cluster.cluster import Cluster
from tests.cluster.prometheus import Prometheus
from tests.metrics.canned_http import CannedServer, Reply, canned_server

from .helpers import (
    condition,
    events,
    history,
    trial_pods,
    wait_condition,
    wait_event,
    wait_phase,
    wait_running,
    wait_status,
)
from .runner import InProcessOperator, sweep_manifest

DEAD = "http://127.0.0.1:9"  # discard port: nothing listens
SECRET = "hunter2-SECRET"


@pytest.fixture(scope="module")
def canned() -> Iterator[CannedServer]:
    """A 'Prometheus' that answers what a test sets: malformed answers, credentials."""
    with canned_server() as server:
        yield server


@pytest.fixture(scope="module")
def operator(
    crd: Cluster, prometheus: Prometheus, canned: CannedServer
) -> Iterator[InProcessOperator]:
    """The operator allowing the test Prometheus, the dead URL and canned's /prom path."""
    config = OperatorConfig(
        metrics_port=None,
        idle_interval=5.0,
        allowed_prometheus_urls=(prometheus.url, DEAD, f"{canned.url}/prom"),
    )
    with InProcessOperator(crd.kubeconfig, config) as running:
        yield running


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
    # A trial whose whole run fell in the outage has no values anywhere: it is rerun.
    records = history(final)
    # The records first: a failed trial's reason says which rule judged it.
    assert final["trials"]["failed"] == 0, records
    assert final["phase"] == "Succeeded"
    assert all(r["s"] == "Succeeded" for r in records.values()), records
    assert sorted(records) == [0, 1, 2, 3]
    assert condition(final, "MetricsAvailable")["status"] == "True"
    assert wait_event(crd, namespace, "PrometheusUnreachable")


def test_unreachable_prometheus_url_is_a_condition_with_retries(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    dead = DEAD
    env = {"STEPS": "8", "STEP_SECONDS": "0.2"}
    crd.create(_sweep_reading(dead, "nowhere", namespace, env=env, max_trials=2, parallelism=2))
    down = wait_condition(crd, namespace, "nowhere", "MetricsAvailable", "False")
    assert down["phase"] == "Running"
    assert dead in condition(down, "MetricsAvailable")["message"]
    # The termination message still carries every final value: nothing is lost or failed.
    final = wait_phase(crd, namespace, "nowhere", "Succeeded", "Failed", timeout=60)
    assert final["phase"] == "Succeeded" and final["trials"]["failed"] == 0


def test_malformed_answer_is_a_condition_and_the_sweep_carries_on(
    operator: InProcessOperator, crd: Cluster, namespace: str, canned: CannedServer
) -> None:
    # An instant query answered with a null value: the reader used to raise TypeError,
    # which aborted every pass while trials ran.
    canned.replies["/prom/api/v1/query"] = Reply(
        json.dumps(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {"trial": SECRET}, "value": [1, None]}],
                },
            }
        ).encode()
    )
    env = {"STEPS": "8", "STEP_SECONDS": "0.2"}
    url = f"{canned.url}/prom"
    crd.create(_sweep_reading(url, "garbled", namespace, env=env, max_trials=3, parallelism=2))
    down = wait_condition(crd, namespace, "garbled", "MetricsAvailable", "False")
    metrics = condition(down, "MetricsAvailable")
    assert metrics["reason"] == "MetricsUnreadable"
    assert "has no numeric value" in metrics["message"] and SECRET not in metrics["message"]
    # Passes go on: trials finish on their termination messages and new ones start.
    final = wait_phase(crd, namespace, "garbled", "Succeeded", "Failed", timeout=60)
    assert final["phase"] == "Succeeded" and final["trials"]["succeeded"] == 3, final
    assert condition(final, "MetricsAvailable")["status"] == "False"
    assert wait_event(crd, namespace, "MetricsUnreadable")


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("/prom/secret#", "a fragment ('#') is not allowed"),
        ("/prom?x=", "a query string ('?') is not allowed"),
        ("/elsewhere", "not on the operator's allow-list"),
    ],
)
def test_prometheus_url_not_allowed_is_refused(
    operator: InProcessOperator,
    crd: Cluster,
    namespace: str,
    canned: CannedServer,
    url: str,
    rule: str,
) -> None:
    canned.replies["/prom/secret"] = Reply(json.dumps({"token": SECRET}).encode())
    canned.paths.clear()
    sweep = _sweep_reading(
        canned.url + url, "refused", namespace, env={}, max_trials=2, parallelism=1
    )
    crd.create(sweep)
    refused = wait_condition(crd, namespace, "refused", "SpecAccepted", "False")
    accepted = condition(refused, "SpecAccepted")
    assert accepted["reason"] == "InvalidSpec"
    assert accepted["message"].startswith("spec.metrics.prometheus.url: ")
    assert rule in accepted["message"]
    wait_event(crd, namespace, "InvalidSpec")
    warnings = [e for e in events(crd, namespace) if e.get("reason") == "InvalidSpec"]
    assert warnings and warnings[0]["type"] == "Warning"
    assert "spec.metrics.prometheus.url" in warnings[0]["message"]
    time.sleep(2)
    assert trial_pods(crd, namespace, "refused") == []
    assert canned.paths == [], "the operator sent a request to a refused URL"
