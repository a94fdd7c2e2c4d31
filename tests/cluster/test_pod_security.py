"""Pod Security admission: a namespace's enforce label refuses violating pods, as a real API server does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubetune.builders.pod import build_trial_pod
from kubetune.spec import effective_spec, parse_sweep

from .cluster import Cluster


def _label(cluster: Cluster, namespace: str, level: str) -> None:
    done = cluster.kubectl(
        "label", "namespace", namespace, f"pod-security.kubernetes.io/enforce={level}"
    )
    assert done.returncode == 0, done.stderr


def _pod(name: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "busybox", **spec.pop("container", {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def _apply(cluster: Cluster, namespace: str, pod: dict[str, Any]) -> tuple[int, str]:
    done = cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    return done.returncode, done.stderr.strip()


def test_restricted_refuses_a_plain_pod_with_the_real_message(
    cluster: Cluster, namespace: str
) -> None:
    _label(cluster, namespace, "restricted")
    code, err = _apply(cluster, namespace, _pod("plain"))
    assert code != 0
    assert err == (
        'Error from server (Forbidden): error when creating "STDIN": pods "plain" is forbidden: '
        'violates PodSecurity "restricted:latest": '
        'allowPrivilegeEscalation != false (container "main" must set '
        "securityContext.allowPrivilegeEscalation=false), "
        'unrestricted capabilities (container "main" must set '
        'securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "main" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "main" must set securityContext.seccompProfile.type '
        'to "RuntimeDefault" or "Localhost")'
    )
    assert cluster.get("pods", "plain", namespace) is None


def test_restricted_admits_the_pods_kubetune_builds(cluster: Cluster, namespace: str) -> None:
    _label(cluster, namespace, "restricted")
    sweep = parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "s", "namespace": namespace},
            "spec": {
                "parameters": [{"name": "x", "type": "float", "min": 0, "max": 1}],
                "template": {
                    "spec": {
                        "initContainers": [{"name": "setup", "image": "busybox"}],
                        "containers": [{"name": "main", "image": "busybox"}],
                    }
                },
            },
        }
    )
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 0, {"x": 0.5})
    code, err = _apply(cluster, namespace, pod)
    assert code == 0, err


@pytest.mark.parametrize(
    ("level", "pod", "refused"),
    [
        ("baseline", _pod("root", container={"securityContext": {"runAsUser": 0}}), None),
        (
            "baseline",
            _pod("host", hostNetwork=True, volumes=[{"name": "r", "hostPath": {"path": "/"}}]),
            'violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), '
            'hostPath volumes (volume "r")',
        ),
        (
            "baseline",
            _pod("priv", container={"securityContext": {"privileged": True}}),
            'privileged (container "main" must not set securityContext.privileged=true)',
        ),
        ("privileged", _pod("priv", container={"securityContext": {"privileged": True}}), None),
        # nodeName is kubetune's own rule, not a Pod Security check.
        ("baseline", _pod("pinned", nodeName="node-1"), None),
    ],
)
def test_levels(
    cluster: Cluster, namespace: str, level: str, pod: dict[str, Any], refused: str | None
) -> None:
    _label(cluster, namespace, level)
    code, err = _apply(cluster, namespace, pod)
    if refused is None:
        assert code == 0, err
    else:
        assert code != 0 and refused in err and "(Forbidden)" in err, err


def test_unlabelled_namespace_enforces_nothing(cluster: Cluster, namespace: str) -> None:
    pod = _pod("priv", hostPID=True, container={"securityContext": {"privileged": True}})
    code, err = _apply(cluster, namespace, pod)
    assert code == 0, err


def test_python_client_sees_403_forbidden(cluster: Cluster, namespace: str) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    _label(cluster, namespace, "baseline")
    api = client.CoreV1Api(cluster.api_client())
    with pytest.raises(ApiException) as error:
        api.create_namespaced_pod(namespace, _pod("h", hostIPC=True))  # type: ignore[arg-type]
    assert error.value.status == 403
    body = json.loads(error.value.body or "{}")
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'pods "h" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostIPC=true)'
    )
