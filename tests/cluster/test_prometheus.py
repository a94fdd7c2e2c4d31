"""The real Prometheus discovers trial pods of the test cluster and scrapes their metrics."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from .cluster import Cluster
from .fixtures import TESTDATA
from .prometheus import Prometheus, free_port

METRICS_POD = str(TESTDATA / "metrics_pod.py")

pytestmark = pytest.mark.slow  # runs a real Prometheus server


def trial_pod(
    name: str, namespace: str, value: float, *, labelled: bool = True, named_port: bool = True
) -> dict[str, Any]:
    labels = {"kubetune.dev/sweep": "s1", "kubetune.dev/trial": name} if labelled else {}
    container: dict[str, Any] = {
        "name": "trainer",
        "image": "ignored",
        "command": ["python", METRICS_POD],
        "env": [
            {"name": "VALUE", "value": str(value)},
            {
                "name": "KUBETUNE_METRICS_ADDR",
                "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
            },
        ],
    }
    annotations = {}
    if named_port:
        container["ports"] = [{"name": "metrics", "containerPort": 9400}]
    else:
        annotations["prometheus.io/port"] = "9400"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {"restartPolicy": "Never", "containers": [container]},
    }


def test_discovers_labelled_trial_pods_and_scrapes_them(
    cluster: Cluster, prometheus: Prometheus, namespace: str
) -> None:
    cluster.create(trial_pod("s1-t0000", namespace, 3.0))
    cluster.create(trial_pod("s1-t0001", namespace, 5.0, named_port=False))
    cluster.create(trial_pod("unrelated", namespace, 7.0, labelled=False))
    query = f'kubetune_test_value{{namespace="{namespace}"}}'
    cluster.wait_for(
        lambda: len(prometheus.query(query)) == 2, timeout=40, message="both trial pods scraped"
    )
    series = {s["metric"]["trial"]: s for s in prometheus.query(query)}
    assert {t: float(s["value"][1]) for t, s in series.items()} == {
        "s1-t0000": 3.0,
        "s1-t0001": 5.0,
    }
    first = series["s1-t0000"]["metric"]
    assert first["sweep"] == "s1" and first["pod"] == "s1-t0000"
    assert first["instance"] == f"{cluster.pod_ip(namespace, 's1-t0000')}:9400"
    scraped_pods = {t["labels"].get("pod") for t in prometheus.targets()}
    assert "unrelated" not in scraped_pods
    assert prometheus.discovery is not None and prometheus.discovery.refreshes > 0

    # A finished trial leaves the targets (its phase is no longer Running).
    cluster.delete("pods", "s1-t0000", namespace)
    cluster.wait_for(
        lambda: "s1-t0000" not in {t["labels"].get("pod") for t in prometheus.targets()},
        timeout=40,
        message="deleted pod dropped from targets",
    )


def test_extra_static_targets(prometheus: Prometheus) -> None:
    registry = CollectorRegistry()
    Gauge("kubetune_static_probe", "A static target.", registry=registry).set(42)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        prometheus.add_static_targets("operator", [f"127.0.0.1:{port}"])
        found = prometheus.wait_for('kubetune_static_probe{job="operator"}', timeout=40)
        assert float(found[0]["value"][1]) == 42.0
    finally:
        server.shutdown()
        thread.join(5)
