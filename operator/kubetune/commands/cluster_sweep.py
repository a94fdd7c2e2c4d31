"""Reading one HyperparameterSweep from the cluster, for the commands that inspect one."""

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kubetune.spec import SweepSpec


class SweepUnreadable(Exception):
    """The sweep could not be read; the message is one line for the user."""


def default_namespace(kubeconfig: str | None) -> str:
    from kubernetes import config

    try:
        _contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:  # no kubeconfig at all: in-cluster, or nothing to go on
        return "default"
    return str((active or {}).get("context", {}).get("namespace") or "default")


async def _fetch(name: str, namespace: str, kubeconfig: str | None) -> dict[str, Any] | None:
    from kubetune.operator.kube import KubeClient

    kube = KubeClient.from_environment(kubeconfig)
    try:
        return await kube.get_sweep(namespace, name)
    finally:
        await kube.aclose()


def read_sweep(name: str, namespace: str | None, kubeconfig: str | None) -> dict[str, Any]:
    """The sweep object as the API returns it; SweepUnreadable when missing or unreachable."""
    from kubernetes.config import ConfigException

    from kubetune.operator.kube import ApiError

    namespace = namespace or default_namespace(kubeconfig)
    try:
        body = asyncio.run(_fetch(name, namespace, kubeconfig))
    except (ApiError, ConfigException, OSError) as error:
        raise SweepUnreadable(f"cannot read the sweep: {error}") from None
    if body is None:
        raise SweepUnreadable(f"sweep {namespace}/{name} not found")
    return body


def spec_of(body: dict[str, Any]) -> "SweepSpec":
    """The sweep's spec as the operator reads it; ValueError when it does not parse."""
    from kubetune.spec import SpecError, parse_sweep

    name = body.get("metadata", {}).get("name", "?")
    plain = {k: body.get(k) for k in ("apiVersion", "kind", "spec")}
    plain["metadata"] = {"name": name}
    try:
        return parse_sweep(plain, name).spec
    except SpecError as error:
        raise ValueError(f"sweep {name} has an invalid spec: {error}") from None
