"""The operator refuses a sweep whose pods would break the pod policy, before any pod exists."""

from __future__ import annotations

from kubetune import PLURAL
from tests.cluster.cluster import Cluster

from .helpers import condition, sweep, trial_pods, wait_event, wait_phase
from .runner import InProcessOperator, sweep_manifest


def test_privileged_template_is_invalid_and_creates_no_pod(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    manifest = sweep_manifest("root", namespace)
    pod_spec = manifest["spec"]["template"]["spec"]
    pod_spec["initContainers"] = [
        {"name": "setup", "image": "busybox", "securityContext": {"privileged": True}}
    ]
    pod_spec["volumes"] = [{"name": "host", "hostPath": {"path": "/"}}]
    crd.create(manifest)
    invalid = wait_phase(crd, namespace, "root", "Invalid", timeout=30)
    accepted = condition(invalid, "SpecAccepted")
    assert accepted["status"] == "False" and accepted["reason"] == "InvalidSpec"
    for field in (
        "spec.template.spec.initContainers[0].securityContext.privileged",
        "spec.template.spec.volumes[0].hostPath",
    ):
        assert f"{field}: refused by pod policy restricted" in accepted["message"]
    warnings = " ".join(wait_event(crd, namespace, "InvalidSpec"))
    assert "spec.template.spec.initContainers[0].securityContext.privileged" in warnings
    assert "refused by pod policy restricted" in warnings
    assert not trial_pods(crd, namespace, "root")
    assert not sweep(crd, namespace, "root")["status"].get("history")
    # Only the operator's probe build ran: the pods API saw no attempt either.
    assert crd.kubectl("get", "pods", "-n", namespace, "-o", "name").stdout.strip() == ""
    assert crd.kubectl("get", PLURAL, "root", "-n", namespace).returncode == 0
