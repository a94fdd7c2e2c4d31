"""The test cluster's scheduler keeps pods off tainted nodes unless they tolerate the taint."""

from typing import Any

import pytest

from tests.cluster.scheduling import Node, place, tolerates

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}


def _pod(tolerations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": "c"}], "tolerations": tolerations or []}}


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "nvidia.com/gpu", "value": "present"}, True),  # Equal is the default
        ({"key": "nvidia.com/gpu", "operator": "Equal", "value": "absent"}, False),
        ({"key": "other", "operator": "Exists"}, False),
        ({"operator": "Exists"}, True),  # empty key with Exists: every taint
    ],
)
def test_toleration_matching(toleration: dict[str, Any], expected: bool) -> None:
    assert tolerates(toleration, GPU_TAINT) is expected


def test_tainted_gpu_node_takes_only_pods_that_tolerate_it() -> None:
    nodes = [Node("gpu-1", gpus=1, taints=[GPU_TAINT])]
    chosen, message = place(_pod(), [], nodes)
    assert chosen is None
    assert message == (
        "0/1 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}."
    )
    tolerated = _pod([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    assert place(tolerated, [], nodes) == ("gpu-1", "")
    soft = [Node("n", gpus=0, taints=[{**GPU_TAINT, "effect": "PreferNoSchedule"}])]
    assert place(_pod(), [], soft) == ("n", "")
