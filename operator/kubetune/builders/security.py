"""Hardening and the admin pod policy, applied to every pod the builders make.

Pure. The defaults go on every container (init containers and sidecars too, not only the
trial's), key by key where the template says nothing; then the pod is checked against the
policy, and a refusal is a BuildError naming the sweep's field, so `kubetune validate` and the
operator's accept-time probe build refuse the same sweeps.
"""

import copy
from collections.abc import Callable
from typing import Any

from kubetune.builders.errors import BuildError
from kubetune.policy.pod_policy import (
    CONTAINER_KINDS,
    DEFAULT_SERVICE_ACCOUNT,
    PodPolicy,
    policy_problems,
)

POD_SECURITY_DEFAULTS: dict[str, Any] = {
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_DEFAULTS: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
}


# A template may break hundreds of rules; the condition message and Event name this many.
MAX_LISTED_PROBLEMS = 10


class PolicyRefused(BuildError):
    """The built pod asks for more than the pod policy allows; .problems has every reason."""

    def __init__(self, problems: list[str]) -> None:
        field, rule = problems[0].split(": ", 1)
        super().__init__(field, rule)
        self.problems = problems
        self.args = (str(self),)

    def __str__(self) -> str:
        listed = "; ".join(self.problems[:MAX_LISTED_PROBLEMS])
        more = len(self.problems) - MAX_LISTED_PROBLEMS
        return f"{listed}; and {more} more" if more > 0 else listed


def harden_pod_spec(pod_spec: dict[str, Any], policy: PodPolicy) -> None:
    """Security defaults on the pod and each of its containers; no token unless allowed."""
    for kind in CONTAINER_KINDS:
        for container in pod_spec.get(kind) or []:
            if isinstance(container, dict):
                container["securityContext"] = _merge_defaults(
                    container.get("securityContext"), CONTAINER_SECURITY_DEFAULTS
                )
    pod_spec["securityContext"] = _merge_defaults(
        pod_spec.get("securityContext"), POD_SECURITY_DEFAULTS
    )
    account = (
        pod_spec.get("serviceAccountName")
        or pod_spec.get("serviceAccount")  # the deprecated alias Kubernetes still honours
        or DEFAULT_SERVICE_ACCOUNT
    )
    if not policy.allows_service_account(str(account)):
        # An explicit true stays, so that the policy check names it instead of hiding it.
        pod_spec.setdefault("automountServiceAccountToken", False)


def enforce_policy(
    pod: dict[str, Any],
    policy: PodPolicy,
    *,
    at: str = "",
    field: Callable[[str], str] | None = None,
) -> None:
    """PolicyRefused (a BuildError) listing every field `pod` asks beyond `policy`.

    `at` is prepended to each pod path; `field`, when given, turns a pod path into the
    sweep field the user wrote instead.
    """
    problems = policy_problems(pod, policy, at=at)
    if field is not None:
        problems = [_renamed(problem, field) for problem in problems]
    if problems:
        raise PolicyRefused(problems)


def _renamed(problem: str, field: Callable[[str], str]) -> str:
    path, rule = problem.split(": ", 1)
    return f"{field(path)}: {rule}"


def _merge_defaults(given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(defaults)
    if isinstance(given, dict):
        if given.get("privileged") is True:
            # The API server rejects privileged with allowPrivilegeEscalation false.
            merged.pop("allowPrivilegeEscalation", None)
        capabilities = given.get("capabilities")
        if (
            isinstance(capabilities, dict)
            and "drop" not in capabilities
            and "capabilities" in merged
        ):
            # Adding one capability must not silently keep every other one.
            given = {**given, "capabilities": {**merged["capabilities"], **capabilities}}
        merged.update(copy.deepcopy(given))
    return merged
