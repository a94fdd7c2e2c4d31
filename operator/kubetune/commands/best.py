"""`kubetune best NAME [-n NS]`: the best configuration of a sweep, as YAML to reuse."""

import argparse
import asyncio
import sys
from typing import Any

from kubetune.spec import SpecError, SweepStatus, parse_sweep


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "best",
        help="Print a sweep's best configuration as YAML.",
        description="Print the best trial of a HyperparameterSweep in the cluster as YAML "
        "ready to paste back into a sweep (trainer.args) or hand to a trainer.",
    )
    parser.add_argument("name", help="Sweep name.")
    parser.add_argument(
        "-n", "--namespace", default=None, help="Namespace (default: the context's)."
    )
    parser.add_argument("--kubeconfig", default=None, help="Path of the kubeconfig file.")


def render(body: dict[str, Any]) -> str:
    """The YAML for a sweep object as the API returns it; ValueError when there is no best."""
    from kubetune.best import best_scores, best_yaml

    name = body.get("metadata", {}).get("name", "?")
    status = SweepStatus.of(body)
    if status.best is None:
        raise ValueError(f"sweep {name} has no succeeded trial yet (phase {status.phase})")
    plain = {k: body.get(k) for k in ("apiVersion", "kind", "spec")}
    plain["metadata"] = {"name": name}
    try:
        spec = parse_sweep(plain, name).spec
    except SpecError as error:
        raise ValueError(f"sweep {name} has an invalid spec: {error}") from None
    metrics = (status.objective or "objective").split(",")
    header = f"# Best trial of {name}: {status.best.trial}, {best_scores(metrics, status.best)}\n"
    return header + best_yaml(spec, status.best)


async def _fetch(name: str, namespace: str, kubeconfig: str | None) -> dict[str, Any] | None:
    from kubetune.operator.kube import KubeClient

    kube = KubeClient.from_environment(kubeconfig)
    try:
        return await kube.get_sweep(namespace, name)
    finally:
        await kube.aclose()


def _default_namespace(kubeconfig: str | None) -> str:
    from kubernetes import config

    try:
        _contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except Exception:  # no kubeconfig at all: in-cluster, or nothing to go on
        return "default"
    return str((active or {}).get("context", {}).get("namespace") or "default")


def main(args: argparse.Namespace) -> int:
    from kubernetes.config import ConfigException

    from kubetune.operator.kube import ApiError

    namespace = args.namespace or _default_namespace(args.kubeconfig)
    try:
        body = asyncio.run(_fetch(args.name, namespace, args.kubeconfig))
    except (ApiError, ConfigException, OSError) as error:
        print(f"kubetune best: cannot read the sweep: {error}", file=sys.stderr)
        return 1
    if body is None:
        print(f"kubetune best: sweep {namespace}/{args.name} not found", file=sys.stderr)
        return 1
    try:
        text = render(body)
    except ValueError as error:
        print(f"kubetune best: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0
