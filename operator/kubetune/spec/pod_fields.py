"""Kubernetes pod fields a sweep may set on its trainer pods, in Kubernetes' names and shapes.

So a user can paste them from a Deployment: tolerations, image pull secrets and volume
mounts are typed (small shapes the CRD schema can check), affinity and volumes are kept as
the Kubernetes objects they are (large, free-form; the API server checks them when the pod
is created). Pure validation: no Kubernetes client.
"""

import re
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, model_validator

from kubetune.spec.parameters import SpecModel

# A DNS-1123 label: volume names, and the name of a Kueue LocalQueue as a label value.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MAX = 63
# A DNS-1123 subdomain: PriorityClass, ServiceAccount, RuntimeClass and Secret names.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX = 253

# Kubernetes' resource.Quantity: a decimal number, then a binary or decimal SI suffix or
# an exponent ("16Gi", "500M", "1e9", "0.5Gi").
_QUANTITY = re.compile(
    r"^(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][-+]?[0-9]+)?$"
)
_SUFFIX_FACTORS: dict[str, Decimal] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}

# Label keys: an optional DNS subdomain prefix and a name of at most 63 characters.
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUBDOMAIN = re.compile(DNS_SUBDOMAIN_PATTERN)


def quantity_bytes(value: int | str) -> Decimal:
    """The value of a Kubernetes quantity; ValueError naming the rule when it is not one."""
    if isinstance(value, bool):  # a YAML `yes` is not a size
        raise ValueError(f"must be a Kubernetes quantity such as 16Gi, got {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"must be a Kubernetes quantity such as 16Gi, got {value[:64]!r}")
    suffix = match.group("suffix") or ""
    number = Decimal(match.group("number"))
    if suffix[:1] in ("e", "E"):
        return number * Decimal(10) ** int(suffix[1:])
    return number * _SUFFIX_FACTORS[suffix]


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a valid label or annotation key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > DNS_SUBDOMAIN_MAX or not _SUBDOMAIN.match(prefix)):
        return "the prefix before / must be a DNS subdomain (lower case, e.g. example.com)"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            "the name must be 1-63 characters of letters, digits, -, _ or ., "
            "starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            "a label value must be at most 63 characters of letters, digits, -, _ or ., "
            "starting and ending with a letter or digit"
        )
    return None


class Toleration(SpecModel):
    """A pod toleration, as in a PodSpec."""

    key: str | None = Field(default=None, description="Taint key; empty with Exists: every taint.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (the default)."
    )
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(
        default=None, description="NoExecute only: how long the pod stays after the taint."
    )

    @model_validator(mode="after")
    def _kubernetes_rules(self) -> "Toleration":
        # The API server's own rules, so `kubetune validate` refuses what pod creation would.
        if self.operator == "Exists" and self.value:
            raise ValueError("value: must be empty when operator is Exists")
        if not self.key and self.operator != "Exists":
            raise ValueError("operator: must be Exists when key is empty")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("effect: must be NoExecute when tolerationSeconds is set")
        return self


class LocalObjectReference(SpecModel):
    """A Secret in the sweep's namespace, by name."""

    name: str = Field(pattern=DNS_SUBDOMAIN_PATTERN, max_length=DNS_SUBDOMAIN_MAX)


class VolumeMount(SpecModel):
    """A volumeMount of the trainer container, as in a container spec."""

    name: str = Field(description="A volume of trainer.volumes.")
    mount_path: str = Field(pattern=r"^/", description="Absolute path in the container.")
    read_only: bool | None = None
    sub_path: str | None = None
    sub_path_expr: str | None = None
    mount_propagation: Literal["None", "HostToContainer", "Bidirectional"] | None = None
    recursive_read_only: Literal["Disabled", "IfPossible", "Enabled"] | None = None


def volume_problems(volumes: list[dict[str, Any]]) -> list[str]:
    """ "[i].name: rule" for each volume without a valid, unique name."""
    problems: list[str] = []
    seen: set[str] = set()
    for index, volume in enumerate(volumes):
        name = volume.get("name")
        if not isinstance(name, str) or not re.match(DNS_LABEL_PATTERN, name):
            problems.append(
                f"[{index}].name: required, a DNS label (lower case letters, digits and -)"
            )
        elif len(name) > DNS_LABEL_MAX:
            problems.append(f"[{index}].name: must be at most {DNS_LABEL_MAX} characters")
        elif name in seen:
            problems.append(f"[{index}].name: duplicate volume name {name!r}")
        else:
            seen.add(name)
        if len([k for k in volume if k != "name"]) != 1:
            problems.append(
                f"[{index}]: needs exactly one volume source "
                "(persistentVolumeClaim, emptyDir, configMap, secret, ...)"
            )
    return problems
