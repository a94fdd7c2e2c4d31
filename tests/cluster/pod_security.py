"""Pod Security admission: a namespace's `pod-security.kubernetes.io/enforce` label refuses pods.

The checks are kubetune's own (kubetune.policy.pod_policy, the Pod Security Standards `latest`
rules); this module only words the refusal as the real admission plugin does:
`pods "x" is forbidden: violates PodSecurity "restricted:latest": reason (detail), ...`.
"""

from __future__ import annotations

from typing import Any

from kubetune.policy.pod_policy import pod_violations

from .errors import ApiError

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
# The real plugin lists its checks by check ID; these are their reasons in that order.
CHECK_ORDER = (
    "allowPrivilegeEscalation != false",
    "forbidden AppArmor profile",
    "non-default capabilities",
    "unrestricted capabilities",
    "host namespaces",
    "hostPath volumes",
    "hostPort",
    "privileged",
    "procMount",
    "restricted volume types",
    "runAsNonRoot != true",
    "runAsUser=0",
    "seLinuxOptions",
    "seccompProfile",
    "forbidden sysctls",
    "hostProcess",
)


def pod_security_error(namespace: dict[str, Any] | None, pod: dict[str, Any]) -> ApiError | None:
    """The 403 the real API server answers a pod create with, or None when the pod is admitted."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE_LABEL)
    if level not in ("baseline", "restricted"):
        return None  # unlabelled or privileged: nothing is enforced
    version = labels.get(ENFORCE_VERSION_LABEL, "latest")
    details: dict[str, list[str]] = {}
    for violation in pod_violations(pod, level):
        if violation.pss:  # kubetune's own rules (nodeName) are no Pod Security check
            found = details.setdefault(violation.check, [])
            if violation.detail not in found:
                found.append(violation.detail)
    if not details:
        return None
    order = {check: index for index, check in enumerate(CHECK_ORDER)}
    reasons = sorted(details, key=lambda check: order.get(check, len(order)))
    listed = ", ".join(f"{check} ({'; '.join(details[check])})" for check in reasons)
    name = (pod.get("metadata") or {}).get("name", "")
    return ApiError(
        403,
        f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": {listed}',
        reason="Forbidden",
        details={"name": name, "kind": "pods"},
    )
