"""Pieces of a pod's status as the kubelet reports them: conditions and container states."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Condition = tuple[str, str, str, str]  # type, status, reason, message


def merge_conditions(
    current: Sequence[dict[str, Any]], updates: Sequence[Condition], stamp: str
) -> list[dict[str, Any]]:
    """Conditions after `updates`; lastTransitionTime moves only when a status flips."""
    merged = [dict(c) for c in current]
    for kind, value, reason, message in updates:
        old = next((c for c in merged if c["type"] == kind), None)
        if old and (old["status"], old.get("reason", ""), old.get("message", "")) == (
            value,
            reason,
            message,
        ):
            continue
        new: dict[str, Any] = {
            "type": kind,
            "status": value,
            "lastProbeTime": None,
            "lastTransitionTime": old["lastTransitionTime"]
            if old and old["status"] == value
            else stamp,
        }
        if reason:
            new["reason"] = reason
        if message:
            new["message"] = message
        merged = [c if c["type"] != kind else new for c in merged]
        if old is None:
            merged.append(new)
    return merged


def container_status(
    spec: dict[str, Any],
    *,
    pod_uid: str,
    restarts: int,
    terminated: dict[str, Any] | None,
    running_since: str | None,
    waiting: tuple[str, str] | None,
) -> dict[str, Any]:
    """One `containerStatuses` entry: terminated, else running, else waiting (reason)."""
    if terminated is not None:
        state: dict[str, Any] = {"terminated": terminated}
    elif running_since is not None:
        state = {"running": {"startedAt": running_since}}
    else:
        reason, message = waiting or ("ContainerCreating", "")
        state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    return {
        "name": spec["name"],
        "image": spec.get("image", ""),
        "imageID": f"sim://{spec.get('image', '')}",
        "containerID": f"sim://{pod_uid}/{spec['name']}",
        "ready": "running" in state,
        "started": "running" in state,
        "restartCount": restarts,
        "state": state,
    }
