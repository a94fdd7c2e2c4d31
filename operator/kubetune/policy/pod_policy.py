"""The admin pod policy: a Pod Security Standards level plus the ServiceAccounts trials may use.

A sweep's creator only needs `create` on HyperparameterSweeps, while the operator's own
ServiceAccount creates the pods: without this policy a sweep template could ask for
`privileged`, a hostPath of `/` or another ServiceAccount and get it. Every pod the operator
builds is checked here first.

Levels follow https://kubernetes.io/docs/concepts/security/pod-security-standards/ (the
`latest` version), with two kubetune rules on top: `nodeName` (skips the scheduler and its
taints) is refused below `privileged`, and a pod may use a ServiceAccount, mount its token or
project one only when `allowedServiceAccounts` lists it, at every level.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

Level = Literal["restricted", "baseline", "privileged"]
LEVELS: tuple[Level, ...] = ("privileged", "baseline", "restricted")  # loosest first
DEFAULT_SERVICE_ACCOUNT = "default"

# Capabilities the container runtime grants by default: baseline lets a container add these back.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
# Namespaced sysctls that cannot reach other pods or the node.
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")


class PodPolicy(BaseModel):
    """What trial pods may ask for. New keys go here, each with a default that changes nothing."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    level: Level = Field(
        default="restricted", description="Pod Security Standards level every trial pod must meet."
    )
    allowed_service_accounts: tuple[str, ...] = Field(
        default=(),
        description="ServiceAccounts a trial pod may run as with its token mounted; "
        "none: `default` only, without a token.",
    )

    training_runtimes: tuple[str, ...] = Field(
        default=(),
        description="ClusterTrainingRuntimes the admin vouches for: a TrainJob trial's pods "
        "come from its runtime's templates, out of kubetune's reach, so below level "
        "privileged a TrainJob may only name one of these (never a namespaced "
        "TrainingRuntime, which a tenant may write).",
    )

    def allows_service_account(self, name: str) -> bool:
        return name in self.allowed_service_accounts


@dataclass(frozen=True)
class Violation:
    """One thing a pod asks for that a level refuses.

    `path` is the field inside the pod manifest; `rule` is kubetune's wording; `check` and
    `detail` are Pod Security admission's (reason and detail of its message); `pss` is False for
    kubetune's own rules, which Pod Security admission does not have.
    """

    path: str
    rule: str
    check: str
    detail: str
    pss: bool = True


def policy_problems(pod: Mapping[str, Any], policy: PodPolicy, *, at: str = "") -> list[str]:
    """ "field.path: refused by pod policy LEVEL: rule" for each thing `pod` asks beyond `policy`.

    `at` is prepended to every path: "spec.template." names a sweep template's fields.
    """
    return [
        f"{at}{v.path}: refused by pod policy {policy.level}: {v.rule}"
        for v in pod_violations(pod, policy.level, policy.allowed_service_accounts)
    ]


def pod_violations(
    pod: Mapping[str, Any], level: Level, allowed_service_accounts: tuple[str, ...] | None = None
) -> list[Violation]:
    """Every violation of `level`; kubetune's ServiceAccount rules only when an allow-list is given."""
    found: list[Violation] = []
    if level != "privileged":
        found += _baseline(pod)
        if level == "restricted":
            found += _restricted(pod)
        found += _node_name(pod)
    if allowed_service_accounts is not None:
        found += _service_account(pod, allowed_service_accounts)
    return found


# ---- helpers ---------------------------------------------------------------------------

SHOWN_CHARS = 64  # a value from the sweep quoted in a message: status and Events stay small


def _shown(value: Any) -> str:
    text = str(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}..."


def _spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = pod.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class _Container:
    path: str  # "spec.containers[0]"
    name: str
    body: Mapping[str, Any]

    @property
    def security(self) -> Mapping[str, Any]:
        return _map(self.body.get("securityContext"))

    @property
    def label(self) -> str:
        return f'container "{_shown(self.name)}"'


def _containers(pod: Mapping[str, Any]) -> Iterator[_Container]:
    spec = _spec(pod)
    for kind in CONTAINER_KINDS:
        for index, item in enumerate(_list(spec.get(kind))):
            body = _map(item)
            yield _Container(f"spec.{kind}[{index}]", str(body.get("name", "")), body)


def _pod_security(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(_spec(pod).get("securityContext"))


# ---- baseline --------------------------------------------------------------------------


def _baseline(pod: Mapping[str, Any]) -> list[Violation]:
    spec = _spec(pod)
    pod_sc = _pod_security(pod)
    found: list[Violation] = []
    containers = list(_containers(pod))

    for c in containers:  # appArmorProfile
        profile = _map(c.security.get("appArmorProfile"))
        if profile.get("type") == "Unconfined":
            found.append(
                Violation(
                    f"{c.path}.securityContext.appArmorProfile.type",
                    "AppArmor must not be Unconfined",
                    "forbidden AppArmor profile",
                    f'{c.label} must not set securityContext.appArmorProfile.type to "Unconfined"',
                )
            )
    if _map(pod_sc.get("appArmorProfile")).get("type") == "Unconfined":
        found.append(
            Violation(
                "spec.securityContext.appArmorProfile.type",
                "AppArmor must not be Unconfined",
                "forbidden AppArmor profile",
                'pod must not set securityContext.appArmorProfile.type to "Unconfined"',
            )
        )
    annotations = _map(_map(pod.get("metadata")).get("annotations"))
    for key, value in annotations.items():
        confined = value == "runtime/default" or str(value).startswith("localhost/")
        if str(key).startswith(APPARMOR_ANNOTATION_PREFIX) and not confined:
            found.append(
                Violation(
                    f"metadata.annotations[{_shown(key)}]",
                    "AppArmor profile must be runtime/default or localhost/*",
                    "forbidden AppArmor profile",
                    f'{_shown(key)}="{_shown(value)}"',
                )
            )

    for c in containers:  # capabilities (baseline)
        for cap in _list(_map(c.security.get("capabilities")).get("add")):
            if cap not in BASELINE_CAPABILITIES:
                found.append(
                    Violation(
                        f"{c.path}.securityContext.capabilities.add",
                        f"capability {_shown(cap)} may not be added",
                        "non-default capabilities",
                        f'{c.label} must not include "{_shown(cap)}" in securityContext.capabilities.add',
                    )
                )

    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            found.append(
                Violation(
                    f"spec.{key}",
                    "host namespaces must not be shared",
                    "host namespaces",
                    f"{key}=true",
                )
            )

    for index, volume in enumerate(_list(spec.get("volumes"))):
        volume = _map(volume)
        if "hostPath" in volume:
            found.append(
                Violation(
                    f"spec.volumes[{index}].hostPath",
                    "hostPath volumes are not allowed",
                    "hostPath volumes",
                    f'volume "{_shown(volume.get("name", ""))}"',
                )
            )

    for c in containers:
        for port_index, port in enumerate(_list(c.body.get("ports"))):
            host_port = _map(port).get("hostPort")
            if host_port:
                found.append(
                    Violation(
                        f"{c.path}.ports[{port_index}].hostPort",
                        "host ports are not allowed",
                        "hostPort",
                        f"{c.label} uses hostPort {host_port}",
                    )
                )

    for c in containers:
        if c.security.get("privileged") is True:
            found.append(
                Violation(
                    f"{c.path}.securityContext.privileged",
                    "privileged containers are not allowed",
                    "privileged",
                    f"{c.label} must not set securityContext.privileged=true",
                )
            )

    for c in containers:
        mount = c.security.get("procMount")
        if mount not in (None, "Default"):
            found.append(
                Violation(
                    f"{c.path}.securityContext.procMount",
                    "procMount must be Default",
                    "procMount",
                    f'{c.label} sets securityContext.procMount="{_shown(mount)}"',
                )
            )

    for path, who, sc in [("spec.securityContext", "pod", pod_sc)] + [
        (f"{c.path}.securityContext", c.label, c.security) for c in containers
    ]:
        options = _map(sc.get("seLinuxOptions"))
        bad = (
            [f'type "{_shown(options["type"])}"']
            if options.get("type", "") not in SELINUX_TYPES
            else []
        )
        bad += [f'{key} "{_shown(options[key])}"' for key in ("user", "role") if options.get(key)]
        if bad:
            found.append(
                Violation(
                    f"{path}.seLinuxOptions",
                    "SELinux user and role must be unset and type one of the container types",
                    "seLinuxOptions",
                    f"{who} set forbidden securityContext.seLinuxOptions: {', '.join(bad)}",
                )
            )

    for path, who, sc in [("spec.securityContext", "pod", pod_sc)] + [
        (f"{c.path}.securityContext", c.label, c.security) for c in containers
    ]:
        if _map(sc.get("seccompProfile")).get("type") == "Unconfined":
            found.append(
                Violation(
                    f"{path}.seccompProfile.type",
                    "seccomp must not be Unconfined",
                    "seccompProfile",
                    f'{who} must not set securityContext.seccompProfile.type to "Unconfined"',
                )
            )

    for index, sysctl in enumerate(_list(pod_sc.get("sysctls"))):
        name = _map(sysctl).get("name")
        if name not in SAFE_SYSCTLS:
            found.append(
                Violation(
                    f"spec.securityContext.sysctls[{index}].name",
                    f"sysctl {_shown(name)} is not in the safe set",
                    "forbidden sysctls",
                    _shown(name),
                )
            )

    host_process = [("spec.securityContext", pod_sc)] + [
        (f"{c.path}.securityContext", c.security) for c in containers
    ]
    for path, sc in host_process:
        if _map(sc.get("windowsOptions")).get("hostProcess") is True:
            found.append(
                Violation(
                    f"{path}.windowsOptions.hostProcess",
                    "Windows HostProcess containers are not allowed",
                    "hostProcess",
                    "pod or containers must not set securityContext.windowsOptions.hostProcess=true",
                )
            )
    return found


# ---- restricted ------------------------------------------------------------------------


def _restricted(pod: Mapping[str, Any]) -> list[Violation]:
    spec = _spec(pod)
    pod_sc = _pod_security(pod)
    containers = list(_containers(pod))
    found: list[Violation] = []

    for c in containers:
        if c.security.get("allowPrivilegeEscalation") is not False:
            found.append(
                Violation(
                    f"{c.path}.securityContext.allowPrivilegeEscalation",
                    "must be false",
                    "allowPrivilegeEscalation != false",
                    f"{c.label} must set securityContext.allowPrivilegeEscalation=false",
                )
            )

    for c in containers:
        caps = _map(c.security.get("capabilities"))
        if "ALL" not in _list(caps.get("drop")):
            found.append(
                Violation(
                    f"{c.path}.securityContext.capabilities.drop",
                    "must include ALL",
                    "unrestricted capabilities",
                    f'{c.label} must set securityContext.capabilities.drop=["ALL"]',
                )
            )
        for cap in _list(caps.get("add")):
            if cap not in RESTRICTED_CAPABILITIES:
                found.append(
                    Violation(
                        f"{c.path}.securityContext.capabilities.add",
                        f"capability {_shown(cap)} may not be added (only NET_BIND_SERVICE)",
                        "unrestricted capabilities",
                        f'{c.label} must not include "{_shown(cap)}" in securityContext.capabilities.add',
                    )
                )

    for index, volume in enumerate(_list(spec.get("volumes"))):
        volume = _map(volume)
        kinds = [k for k in volume if k != "name"]
        for kind in kinds:
            if kind not in RESTRICTED_VOLUME_TYPES and kind != "hostPath":  # hostPath: baseline
                found.append(
                    Violation(
                        f"spec.volumes[{index}].{_shown(kind)}",
                        f"volume type {_shown(kind)} is not allowed "
                        f"(allowed: {', '.join(sorted(RESTRICTED_VOLUME_TYPES))})",
                        "restricted volume types",
                        f'volume "{_shown(volume.get("name", ""))}" uses restricted volume type "{_shown(kind)}"',
                    )
                )

    pod_non_root = pod_sc.get("runAsNonRoot")
    if pod_non_root is False:
        found.append(
            Violation(
                "spec.securityContext.runAsNonRoot",
                "must not be false",
                "runAsNonRoot != true",
                "pod must not set securityContext.runAsNonRoot=false",
            )
        )
    for c in containers:
        own = c.security.get("runAsNonRoot")
        if own is False:
            found.append(
                Violation(
                    f"{c.path}.securityContext.runAsNonRoot",
                    "must not be false",
                    "runAsNonRoot != true",
                    f"{c.label} must not set securityContext.runAsNonRoot=false",
                )
            )
        elif own is None and pod_non_root is not True:
            found.append(
                Violation(
                    f"{c.path}.securityContext.runAsNonRoot",
                    "must be true, here or in spec.securityContext",
                    "runAsNonRoot != true",
                    f"pod or {c.label} must set securityContext.runAsNonRoot=true",
                )
            )

    if pod_sc.get("runAsUser") == 0:
        found.append(
            Violation(
                "spec.securityContext.runAsUser",
                "must not be 0 (root)",
                "runAsUser=0",
                "pod must not set runAsUser=0",
            )
        )
    for c in containers:
        if c.security.get("runAsUser") == 0:
            found.append(
                Violation(
                    f"{c.path}.securityContext.runAsUser",
                    "must not be 0 (root)",
                    "runAsUser=0",
                    f"{c.label} must not set runAsUser=0",
                )
            )

    pod_seccomp = _map(pod_sc.get("seccompProfile")).get("type")
    for c in containers:
        own = _map(c.security.get("seccompProfile")).get("type")
        if own is None and pod_seccomp not in ("RuntimeDefault", "Localhost"):
            found.append(
                Violation(
                    f"{c.path}.securityContext.seccompProfile.type",
                    "must be RuntimeDefault or Localhost, here or in spec.securityContext",
                    "seccompProfile",
                    f'pod or {c.label} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
                )
            )
    return found


# ---- kubetune's own --------------------------------------------------------------------


def _node_name(pod: Mapping[str, Any]) -> list[Violation]:
    if _spec(pod).get("nodeName"):
        return [
            Violation(
                "spec.nodeName",
                "pinning a trial to a node bypasses the scheduler; use nodeSelector or affinity",
                "nodeName",
                "nodeName is set",
                pss=False,
            )
        ]
    return []


def _service_account(pod: Mapping[str, Any], allowed: tuple[str, ...]) -> list[Violation]:
    spec = _spec(pod)
    found: list[Violation] = []
    key = "serviceAccountName" if "serviceAccountName" in spec else "serviceAccount"
    account = str(spec.get(key) or DEFAULT_SERVICE_ACCOUNT)
    shown = _shown(account)
    if account in allowed:
        return found
    allowed_text = ", ".join(allowed) if allowed else "none"
    if account != DEFAULT_SERVICE_ACCOUNT:
        found.append(
            Violation(
                f"spec.{key}",
                f"ServiceAccount {shown} is not in allowedServiceAccounts ({allowed_text})",
                "serviceAccountName",
                shown,
                pss=False,
            )
        )
    if spec.get("automountServiceAccountToken") is not False:
        found.append(
            Violation(
                "spec.automountServiceAccountToken",
                f"must be false: ServiceAccount {shown} is not in allowedServiceAccounts "
                f"({allowed_text})",
                "automountServiceAccountToken",
                shown,
                pss=False,
            )
        )
    for index, volume in enumerate(_list(spec.get("volumes"))):
        sources = _list(_map(_map(volume).get("projected")).get("sources"))
        for position, source in enumerate(sources):
            if "serviceAccountToken" in _map(source):
                found.append(
                    Violation(
                        f"spec.volumes[{index}].projected.sources[{position}].serviceAccountToken",
                        f"a token of ServiceAccount {shown}, which is not in "
                        f"allowedServiceAccounts ({allowed_text})",
                        "serviceAccountToken",
                        shown,
                        pss=False,
                    )
                )
    return found


class PodPolicyError(ValueError):
    """A pod policy that cannot be read; .problems are "field: rule" lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def parse_pod_policy(data: Any, source: str = "podPolicy") -> PodPolicy:
    """A PodPolicy from a mapping (a chart value, a file's content); PodPolicyError naming the key."""
    if data is None:
        return PodPolicy()
    if not isinstance(data, Mapping):
        raise PodPolicyError(source, [f"must be a mapping, or one of {', '.join(LEVELS)}"])
    try:
        return PodPolicy.model_validate(dict(data))
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in error.errors()
        ]
        raise PodPolicyError(source, problems) from None


def load_pod_policy(value: str, source: str = "pod policy") -> PodPolicy:
    """A level name, a YAML/JSON file's path, or YAML/JSON text (the environment variable)."""
    text = value.strip()
    if text in LEVELS:
        return PodPolicy(level=text)
    path = Path(text)
    if text and "\n" not in text and not text.startswith("{") and path.is_file():
        source, text = str(path), path.read_text()
    try:
        data = yaml.safe_load(text) if text else None
    except yaml.YAMLError as error:
        raise PodPolicyError(source, [f"not YAML or JSON: {error}"]) from None
    if isinstance(data, str):
        raise PodPolicyError(
            source, [f"{data!r} is not a level ({', '.join(LEVELS)}) nor a policy file"]
        )
    return parse_pod_policy(data, source)
