"""Where a pod may run: the small scheduler of the test cluster (GPUs, nodeSelector, taints)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

GPU = "nvidia.com/gpu"
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class Node:
    name: str
    gpus: int
    lost: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)


# Taint effects that keep a pod off a node; PreferNoSchedule only steers the real scheduler.
BLOCKING_EFFECTS = ("NoSchedule", "NoExecute")


def tolerates(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """Kubernetes' rule: effect (empty: any), key (empty with Exists: any), then value."""
    if toleration.get("effect") and toleration.get("effect") != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return operator == "Exists"
    if toleration.get("key") != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(pod: Mapping[str, Any], node: Node) -> dict[str, Any] | None:
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in node.taints:
        if taint.get("effect") not in BLOCKING_EFFECTS:
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def gpu_request(pod: Mapping[str, Any]) -> int:
    """GPUs the pod's containers ask for (limits, else requests)."""
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        value = (res.get("limits") or {}).get(GPU, (res.get("requests") or {}).get(GPU, 0))
        total += int(value)
    return total


def place(
    pod: Mapping[str, Any], pods: Sequence[Mapping[str, Any]], nodes: Sequence[Node]
) -> tuple[str | None, str]:
    """The first node with the pod's nodeSelector labels, no taint the pod does not tolerate
    and enough free GPUs, or None and the scheduler's `0/N nodes are available: ...` message."""
    need = gpu_request(pod)
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    short_gpu = mismatched = lost = 0
    tainted: dict[str, int] = {}
    for node in nodes:
        if node.lost:
            lost += 1
            continue
        if any(node.labels.get(k) != v for k, v in selector.items()):
            mismatched += 1
            continue
        taint = untolerated_taint(pod, node)
        if taint is not None:
            shown = f"{{{taint.get('key', '')}: {taint.get('value') or ''}}}"
            tainted[shown] = tainted.get(shown, 0) + 1
            continue
        used = sum(
            gpu_request(p)
            for p in pods
            if (p.get("spec") or {}).get("nodeName") == node.name
            and (p.get("status") or {}).get("phase") not in TERMINAL_PHASES
        )
        if node.gpus - used >= need:
            return node.name, ""
        short_gpu += 1
    reasons = [f"{short_gpu} Insufficient {GPU}"] if short_gpu else []
    if mismatched:
        reasons.append(f"{mismatched} node(s) didn't match Pod's node affinity/selector")
    for shown, count in tainted.items():
        reasons.append(f"{count} node(s) had untolerated taint {shown}")
    if lost:
        reasons.append(f"{lost} node(s) had untolerated taint {{node.kubernetes.io/unreachable: }}")
    return None, f"0/{len(nodes)} nodes are available: {', '.join(reasons)}."
