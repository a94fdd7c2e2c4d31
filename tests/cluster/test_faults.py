"""Fault injection and request counting, seen through real clients."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from .cluster import Cluster
from .faults import Faults


def test_counts_requests_by_verb_and_resource(
    cluster: Cluster, faults: Faults, namespace: str
) -> None:
    core: Any = client.CoreV1Api(cluster.api_client())
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    core.read_namespaced_config_map("c", namespace)
    core.read_namespaced_config_map("c", namespace)
    core.list_namespaced_config_map(namespace)
    core.patch_namespaced_config_map("c", namespace, {"data": {"a": "b"}})
    assert faults.count("create", "configmaps") == 1
    assert faults.count("get", "configmaps") == 2
    assert faults.count("list", "configmaps") == 1
    assert faults.count("patch", "configmaps") == 1
    assert faults.count(resource="configmaps") == 5


def test_fail_next_is_deterministic(cluster: Cluster, faults: Faults, namespace: str) -> None:
    core: Any = client.CoreV1Api(cluster.api_client())
    faults.fail_next(2, 500, only=lambda verb, resource: resource == "configmaps")
    for _ in range(2):
        with pytest.raises(ApiException) as err:
            core.list_namespaced_config_map(namespace)
        assert err.value.status == 500
    assert core.list_namespaced_config_map(namespace).items == []
    core.list_namespaced_pod(namespace)  # other resources were never affected


def test_error_and_conflict_ratios(cluster: Cluster, faults: Faults, namespace: str) -> None:
    core: Any = client.CoreV1Api(cluster.api_client())
    faults.error_ratio = 0.5
    statuses = []
    for _ in range(60):
        try:
            core.list_namespaced_config_map(namespace)
            statuses.append(200)
        except ApiException as err:
            statuses.append(err.status)
    assert set(statuses) == {200, 500}
    assert 10 <= statuses.count(500) <= 50  # seeded: about half
    faults.error_ratio = 0.0
    faults.conflict_ratio = 1.0
    with pytest.raises(ApiException) as conflict:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "x"}})
    assert conflict.value.status == 409
    core.list_namespaced_config_map(namespace)  # reads are never conflicts


def test_latency(cluster: Cluster, faults: Faults) -> None:
    core: Any = client.CoreV1Api(cluster.api_client())
    faults.latency = 0.3
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started >= 0.3


def test_drop_watches_ends_open_streams(cluster: Cluster, faults: Faults, namespace: str) -> None:
    core: Any = client.CoreV1Api(cluster.api_client())
    response = core.list_namespaced_config_map(
        namespace, watch=True, timeout_seconds=30, _preload_content=False
    )
    cluster.wait_for(
        lambda: cluster.call(lambda: len(cluster.api.store.watchers)) == 1,
        message="the watch registered on the server",
    )
    started = time.monotonic()
    faults.drop_watches()
    assert response.read() == b""  # the stream ended without events
    assert time.monotonic() - started < 10
