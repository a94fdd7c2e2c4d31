"""Single-pod trials under Kueue (spec.queueName): the pod Kueue gates is a Queued trial."""

from __future__ import annotations

from typing import Any

from tests.cluster.cluster import Cluster

from .helpers import history, wait_status
from .runner import InProcessOperator, sweep_manifest


def test_gated_trial_pods_are_queued_until_the_quota_admits_them(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.set_kueue_quotas({"gpu-queue": 1})
    seen: list[dict[str, int]] = []
    try:
        env = {"STEPS": "8", "STEP_SECONDS": "0.1"}
        manifest = sweep_manifest("kp", namespace, env=env, max_trials=2, parallelism=2)
        manifest["spec"]["queueName"] = "gpu-queue"
        container = manifest["spec"]["template"]["spec"]["containers"][0]
        container["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
        crd.create(manifest)

        def done(current: dict[str, Any]) -> bool:
            seen.append(dict(current.get("trials") or {}))
            return current.get("phase") in ("Succeeded", "Failed")

        final = wait_status(crd, namespace, "kp", done, timeout=90, what="sweep finished")
    finally:
        crd.set_kueue_quotas({})
    assert final["phase"] == "Succeeded", final
    assert (final["trials"]["succeeded"], final["trials"]["failed"]) == (2, 0)
    assert all(not r.get("rq") for r in history(final).values())
    assert max(s.get("queued", 0) for s in seen) == 1
    assert max(s.get("running", 0) for s in seen) == 1
