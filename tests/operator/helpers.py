"""Reading sweeps, pods and events from the test cluster."""

from __future__ import annotations

import time
from typing import Any

from kubetune import API_GROUP, PLURAL, conventions
from tests.cluster.cluster import Cluster


def sweep(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    found = cluster.get(PLURAL, name, namespace=namespace, group=API_GROUP)
    assert found is not None, f"sweep {namespace}/{name} is gone"
    return found


def status(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return sweep(cluster, namespace, name).get("status") or {}


def wait_status(
    cluster: Cluster, namespace: str, name: str, check: Any, timeout: float = 60, what: str = ""
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    current: dict[str, Any] = {}
    while time.monotonic() < deadline:
        current = status(cluster, namespace, name)
        if check(current):
            return current
        time.sleep(0.2)
    raise TimeoutError(f"{what or 'condition'} not reached in {timeout}s; status: {current}")


def wait_phase(
    cluster: Cluster, namespace: str, name: str, *phases: str, timeout: float = 60
) -> dict[str, Any]:
    return wait_status(
        cluster,
        namespace,
        name,
        lambda s: s.get("phase") in phases,
        timeout,
        what=f"phase in {phases}",
    )


def wait_running(
    cluster: Cluster, namespace: str, name: str, count: int, timeout: float = 60
) -> dict[str, Any]:
    return wait_status(
        cluster,
        namespace,
        name,
        lambda s: s.get("trials", {}).get("running") == count,
        timeout,
        what=f"{count} trials running",
    )


def wait_condition(
    cluster: Cluster, namespace: str, name: str, type_: str, value: str, timeout: float = 60
) -> dict[str, Any]:
    return wait_status(
        cluster,
        namespace,
        name,
        lambda s: condition(s, type_).get("status") == value,
        timeout,
        what=f"{type_}={value}",
    )


def trial_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.list_objects(
        "pods", namespace=namespace, label_selector=f"{conventions.LABEL_SWEEP}={name}"
    )


def events(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    return cluster.list_objects("events", namespace=namespace)


def event_reasons(cluster: Cluster, namespace: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for event in events(cluster, namespace):
        found.setdefault(event.get("reason", ""), []).append(event.get("message", ""))
    return found


def wait_event(cluster: Cluster, namespace: str, reason: str, timeout: float = 30) -> list[str]:
    """The messages of the Events with that reason, once there is one. The operator posts a
    pass's Events after it writes that pass's status (write-ahead), so a test that saw the
    status may look before the Event is there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = event_reasons(cluster, namespace).get(reason, [])
        if found:
            return found
        time.sleep(0.2)
    raise TimeoutError(f"no {reason} Event in {timeout}s: {event_reasons(cluster, namespace)}")


def condition(current: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition of that type; an empty dict when the status has none."""
    found: dict[str, Any] = next(
        (c for c in current.get("conditions") or [] if c["type"] == type_), {}
    )
    return found


def history(current: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {record["n"]: record for record in current.get("history") or []}
