"""Watch protocol details, read off the wire: bookmarks, timeouts, selectors, initial events."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from .cluster import Cluster


def stream(cluster: Cluster, path: str, **params: str) -> list[dict[str, Any]]:
    events = []
    with httpx.stream(
        "GET", cluster.server_url + path, params={"watch": "true", **params}, timeout=30
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                events.append(json.loads(line))
    return events


def configmap(namespace: str, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
    }


def test_timeout_and_bookmarks(cluster: Cluster, namespace: str) -> None:
    made = cluster.create(configmap(namespace, "a"))
    started = time.monotonic()
    events = stream(
        cluster,
        f"/api/v1/namespaces/{namespace}/configmaps",
        resourceVersion=made["metadata"]["resourceVersion"],
        allowWatchBookmarks="true",
        timeoutSeconds="2",
    )
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 10
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    assert int(events[-1]["object"]["metadata"]["resourceVersion"]) >= int(
        made["metadata"]["resourceVersion"]
    )
    assert events[0]["object"]["kind"] == "ConfigMap"


def test_selector_changes_turn_into_added_and_deleted(cluster: Cluster, namespace: str) -> None:
    start = cluster.create(configmap(namespace, "x", {"tier": "a"}))
    rt = cluster.api.resource("", "v1", "configmaps")

    def relabel(tier: str) -> None:
        current = cluster.get("configmaps", "x", namespace)
        assert current is not None
        current["metadata"]["labels"] = {"tier": tier}
        cluster.call(cluster.api.update, rt, namespace, "x", current)

    relabel("b")  # leaves the selection
    relabel("a")  # enters it again
    events = stream(
        cluster,
        f"/api/v1/namespaces/{namespace}/configmaps",
        resourceVersion=start["metadata"]["resourceVersion"],
        labelSelector="tier=a",
        timeoutSeconds="1",
    )
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


def test_initial_events_end_with_a_bookmark(cluster: Cluster, namespace: str) -> None:
    cluster.create(configmap(namespace, "one"))
    cluster.create(configmap(namespace, "two"))
    events = stream(
        cluster,
        f"/api/v1/namespaces/{namespace}/configmaps",
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
        timeoutSeconds="1",
    )
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:3]] == [
        ("ADDED", "one"),
        ("ADDED", "two"),
        ("BOOKMARK", None),
    ]
    assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_follow_logs_streams_until_the_container_ends(cluster: Cluster, namespace: str) -> None:
    code = "import time\nfor i in range(3):\n    print(i, flush=True); time.sleep(0.3)"
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "counter", "namespace": namespace},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "c", "image": "x", "command": ["python", "-c", code]}],
            },
        }
    )
    cluster.wait_for(lambda: cluster.pod_logs(namespace, "counter").startswith("0"))
    followed = cluster.kubectl("logs", "-n", namespace, "-f", "counter", timeout=30)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "0\n1\n2\n"


def test_a_client_hanging_up_ends_its_watch(cluster: Cluster, namespace: str) -> None:
    def watchers() -> int:
        return cluster.call(lambda: len(cluster.api.store.watchers))

    with httpx.stream(
        "GET",
        f"{cluster.server_url}/api/v1/namespaces/{namespace}/configmaps",
        params={"watch": "true"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        cluster.wait_for(lambda: watchers() == 1, message="watch registered")
    cluster.wait_for(lambda: watchers() == 0, timeout=10, message="watch handler ended")
