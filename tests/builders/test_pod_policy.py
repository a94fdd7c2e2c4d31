"""The admin pod policy: each Pod Security Standards rule, kubetune's own, and the builder enforcing them."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kubetune.builders.errors import BuildError
from kubetune.builders.pod import build_trial_pod
from kubetune.builders.security import PolicyRefused
from kubetune.policy.pod_policy import (
    Level,
    PodPolicy,
    PodPolicyError,
    load_pod_policy,
    pod_violations,
    policy_problems,
)
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep

# A pod that meets restricted: what the builder makes of a plain template.
RESTRICTED_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [
            {
                "name": "fetch",
                "image": "busybox",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "containers": [
            {
                "name": "main",
                "image": "me/train:1",
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                },
            }
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "cfg", "configMap": {"name": "cfg"}},
        ],
    },
}


def _with(path: str, value: Any) -> dict[str, Any]:
    """RESTRICTED_POD with one field set; path is dotted, list items as name[index]."""
    pod = copy.deepcopy(RESTRICTED_POD)
    node: Any = pod
    parts = path.split(".")
    for part in parts[:-1]:
        if part.endswith("]"):
            key, index = part[:-1].split("[")
            node = node.setdefault(key, [])[int(index)]
        else:
            node = node.setdefault(part, {})
    node[parts[-1]] = value
    return pod


def _paths(pod: dict[str, Any], level: Level) -> list[str]:
    return [v.path for v in pod_violations(pod, level, ())]


def test_restricted_pod_passes_every_level() -> None:
    for level in ("restricted", "baseline", "privileged"):
        assert policy_problems(RESTRICTED_POD, PodPolicy(level=level)) == []


# (field set, value, the lowest level that refuses it, the path named)
REFUSED: list[tuple[str, Any, Level, str]] = [
    ("spec.hostNetwork", True, "baseline", "spec.hostNetwork"),
    ("spec.hostPID", True, "baseline", "spec.hostPID"),
    ("spec.hostIPC", True, "baseline", "spec.hostIPC"),
    (
        "spec.volumes",
        [{"name": "root", "hostPath": {"path": "/"}}],
        "baseline",
        "spec.volumes[0].hostPath",
    ),
    (
        "spec.containers[0].securityContext.privileged",
        True,
        "baseline",
        "spec.containers[0].securityContext.privileged",
    ),
    (
        "spec.initContainers[0].securityContext.privileged",
        True,
        "baseline",
        "spec.initContainers[0].securityContext.privileged",
    ),
    (
        "spec.containers[0].securityContext.capabilities",
        {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
        "baseline",
        "spec.containers[0].securityContext.capabilities.add",
    ),
    (
        "spec.containers[0].ports",
        [{"containerPort": 80, "hostPort": 80}],
        "baseline",
        "spec.containers[0].ports[0].hostPort",
    ),
    ("spec.nodeName", "gpu-node-1", "baseline", "spec.nodeName"),
    (
        "spec.containers[0].securityContext.procMount",
        "Unmasked",
        "baseline",
        "spec.containers[0].securityContext.procMount",
    ),
    (
        "spec.securityContext.seccompProfile",
        {"type": "Unconfined"},
        "baseline",
        "spec.securityContext.seccompProfile.type",
    ),
    (
        "spec.securityContext.sysctls",
        [{"name": "kernel.msgmax", "value": "1"}],
        "baseline",
        "spec.securityContext.sysctls[0].name",
    ),
    (
        "spec.containers[0].securityContext.appArmorProfile",
        {"type": "Unconfined"},
        "baseline",
        "spec.containers[0].securityContext.appArmorProfile.type",
    ),
    (
        "metadata.annotations",
        {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"},
        "baseline",
        "metadata.annotations[container.apparmor.security.beta.kubernetes.io/main]",
    ),
    (
        "spec.securityContext.seLinuxOptions",
        {"type": "spc_t"},
        "baseline",
        "spec.securityContext.seLinuxOptions",
    ),
    (
        "spec.containers[0].securityContext.seLinuxOptions",
        {"user": "system_u"},
        "baseline",
        "spec.containers[0].securityContext.seLinuxOptions",
    ),
    (
        "spec.containers[0].securityContext.windowsOptions",
        {"hostProcess": True},
        "baseline",
        "spec.containers[0].securityContext.windowsOptions.hostProcess",
    ),
    # Restricted only: baseline lets these through.
    (
        "spec.containers[0].securityContext.runAsUser",
        0,
        "restricted",
        "spec.containers[0].securityContext.runAsUser",
    ),
    ("spec.securityContext.runAsUser", 0, "restricted", "spec.securityContext.runAsUser"),
    (
        "spec.securityContext.runAsNonRoot",
        False,
        "restricted",
        "spec.securityContext.runAsNonRoot",
    ),
    (
        "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
        True,
        "restricted",
        "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
    ),
    (
        "spec.containers[0].securityContext.capabilities",
        {"drop": ["ALL"], "add": ["CHOWN"]},
        "restricted",
        "spec.containers[0].securityContext.capabilities.add",
    ),
    (
        "spec.containers[0].securityContext.capabilities",
        {"add": ["NET_BIND_SERVICE"]},
        "restricted",
        "spec.containers[0].securityContext.capabilities.drop",
    ),
    (
        "spec.volumes",
        [{"name": "share", "nfs": {"server": "x", "path": "/"}}],
        "restricted",
        "spec.volumes[0].nfs",
    ),
    (
        "spec.ephemeralContainers",
        [{"name": "debug", "image": "busybox"}],
        "restricted",
        "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
    ),
]


@pytest.mark.parametrize(("field", "value", "lowest", "path"), REFUSED, ids=[r[0] for r in REFUSED])
def test_each_rule_refuses_from_its_level_up(
    field: str, value: Any, lowest: Level, path: str
) -> None:
    pod = _with(field, value)
    assert path in _paths(pod, "restricted")
    assert (path in _paths(pod, "baseline")) == (lowest == "baseline")
    assert path not in _paths(pod, "privileged")


def test_restricted_needs_non_root_and_seccomp_on_pod_or_every_container() -> None:
    pod = copy.deepcopy(RESTRICTED_POD)
    del pod["spec"]["securityContext"]
    assert set(_paths(pod, "restricted")) == {
        "spec.initContainers[0].securityContext.runAsNonRoot",
        "spec.initContainers[0].securityContext.seccompProfile.type",
        "spec.containers[0].securityContext.runAsNonRoot",
        "spec.containers[0].securityContext.seccompProfile.type",
    }
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        container["securityContext"]["runAsNonRoot"] = True
        container["securityContext"]["seccompProfile"] = {"type": "Localhost"}
    assert _paths(pod, "restricted") == []


def test_problem_lines_name_field_level_and_rule() -> None:
    pod = _with("spec.containers[0].securityContext.privileged", True)
    assert policy_problems(pod, PodPolicy(level="baseline"), at="spec.template.") == [
        "spec.template.spec.containers[0].securityContext.privileged: "
        "refused by pod policy baseline: privileged containers are not allowed"
    ]


def test_service_accounts_need_the_allow_list_at_every_level() -> None:
    pod = _with("spec.serviceAccountName", "cluster-admin-sa")
    pod["spec"]["automountServiceAccountToken"] = True
    for level in ("restricted", "privileged"):
        lines = policy_problems(pod, PodPolicy(level=level))
        assert [line.split(":")[0] for line in lines] == [
            "spec.serviceAccountName",
            "spec.automountServiceAccountToken",
        ]
        assert "cluster-admin-sa is not in allowedServiceAccounts (none)" in lines[0]
    allowed = PodPolicy(allowed_service_accounts=("cluster-admin-sa",))
    assert policy_problems(pod, allowed) == []


def test_default_service_account_runs_without_any_token() -> None:
    mounted = _with("spec.automountServiceAccountToken", True)
    assert _paths(mounted, "privileged") == ["spec.automountServiceAccountToken"]
    unset = copy.deepcopy(RESTRICTED_POD)
    del unset["spec"]["automountServiceAccountToken"]  # Kubernetes' default: mounted
    assert _paths(unset, "restricted") == ["spec.automountServiceAccountToken"]
    projected = _with(
        "spec.volumes",
        [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}],
    )
    assert _paths(projected, "restricted") == [
        "spec.volumes[0].projected.sources[0].serviceAccountToken"
    ]
    assert policy_problems(mounted, PodPolicy(allowed_service_accounts=("default",))) == []


# ---- loading --------------------------------------------------------------------------


def test_load_by_level_name_file_or_text(tmp_path: Path) -> None:
    assert load_pod_policy("baseline") == PodPolicy(level="baseline")
    path = tmp_path / "policy.yaml"
    path.write_text("level: privileged\nallowedServiceAccounts: [trainer]\n")
    assert load_pod_policy(str(path)) == PodPolicy(
        level="privileged", allowed_service_accounts=("trainer",)
    )
    text = json.dumps({"level": "baseline", "allowedServiceAccounts": ["a", "b"]})
    assert load_pod_policy(text).allowed_service_accounts == ("a", "b")
    assert load_pod_policy("{}") == PodPolicy()


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("lenient", "is not a level"),
        ('{"level": "root"}', "level: Input should be"),
        ('{"allowedServiceAcounts": ["x"]}', "allowedServiceAcounts: Extra inputs"),
        ("[1, 2]", "must be a mapping"),
    ],
)
def test_bad_policy_names_the_key(text: str, wanted: str) -> None:
    with pytest.raises(PodPolicyError) as error:
        load_pod_policy(text)
    assert wanted in str(error.value)


# ---- the builder enforces it ----------------------------------------------------------


def _template_sweep(pod_spec: dict[str, Any]) -> HyperparameterSweep:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "s", "namespace": "team"},
            "spec": {
                "parameters": [{"name": "lr", "type": "float", "min": 0.1, "max": 1}],
                "template": {"spec": pod_spec},
            },
        }
    )


def _build(pod_spec: dict[str, Any], policy: PodPolicy | None = None) -> dict[str, Any]:
    sweep = _template_sweep(pod_spec)
    return build_trial_pod(sweep, effective_spec(sweep.spec), 0, {"lr": 0.5}, policy=policy)


ROOT_ON_A_NODE = {
    "hostPID": True,
    "nodeName": "gpu-1",
    "initContainers": [
        {"name": "setup", "image": "busybox", "securityContext": {"privileged": True}}
    ],
    "containers": [
        {
            "name": "main",
            "image": "me/train:1",
            "volumeMounts": [{"name": "root", "mountPath": "/host"}],
        }
    ],
    "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
}


def test_builder_refuses_with_every_field_named() -> None:
    with pytest.raises(BuildError) as error:
        _build(ROOT_ON_A_NODE)
    assert isinstance(error.value, PolicyRefused)
    assert error.value.field == "spec.template.spec.hostPID"
    fields = [line.split(": ")[0] for line in error.value.problems]
    assert fields == [
        "spec.template.spec.hostPID",
        "spec.template.spec.volumes[0].hostPath",
        "spec.template.spec.initContainers[0].securityContext.privileged",
        "spec.template.spec.initContainers[0].securityContext.allowPrivilegeEscalation",
        "spec.template.spec.nodeName",
    ]
    assert all("refused by pod policy restricted" in line for line in error.value.problems)


def test_privileged_policy_lets_the_admin_allow_it() -> None:
    pod = _build(ROOT_ON_A_NODE, PodPolicy(level="privileged"))
    setup = pod["spec"]["initContainers"][0]
    # Privileged, hence no conflicting allowPrivilegeEscalation=false (the API server refuses both).
    assert setup["securityContext"] == {"privileged": True, "capabilities": {"drop": ["ALL"]}}
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_builder_hardens_init_containers_and_honours_allowed_service_account() -> None:
    spec = {
        "serviceAccountName": "trainer",
        "initContainers": [{"name": "setup", "image": "busybox"}],
        "containers": [{"name": "main", "image": "me/train:1"}],
    }
    with pytest.raises(BuildError) as error:
        _build(spec)
    assert error.value.field == "spec.template.spec.serviceAccountName"
    pod = _build(spec, PodPolicy(allowed_service_accounts=("trainer",)))
    assert "automountServiceAccountToken" not in pod["spec"], "an allowed account keeps its token"
    assert pod["spec"]["initContainers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert policy_problems(pod, PodPolicy(allowed_service_accounts=("trainer",))) == []


def test_explicit_token_mount_is_refused_not_silently_dropped() -> None:
    spec = {"automountServiceAccountToken": True, "containers": [{"name": "m", "image": "i"}]}
    with pytest.raises(BuildError) as error:
        _build(spec)
    assert error.value.field == "spec.template.spec.automountServiceAccountToken"


def test_refusal_stays_small_whatever_the_template() -> None:
    # Status conditions and Events quote the refusal: a hostile template must not bloat them.
    huge = "X" * 10_000
    spec = {
        "containers": [
            {
                "name": f"c{i}",
                "image": "i",
                "securityContext": {"capabilities": {"drop": ["ALL"], "add": [huge]}},
            }
            for i in range(50)
        ]
    }
    with pytest.raises(PolicyRefused) as error:
        _build(spec)
    assert len(error.value.problems) == 100  # every one is kept for `validate`
    message = str(error.value)
    assert message.endswith("; and 90 more")
    assert len(message) < 3000
    assert f"capability {'X' * 64}... may not be added" in error.value.problems[0]


def test_deprecated_service_account_alias_is_the_same_account() -> None:
    spec = {"serviceAccount": "trainer", "containers": [{"name": "m", "image": "i"}]}
    with pytest.raises(BuildError) as error:
        _build(spec)
    assert error.value.field == "spec.template.spec.serviceAccount"
    pod = _build(spec, PodPolicy(allowed_service_accounts=("trainer",)))
    assert "automountServiceAccountToken" not in pod["spec"]
