"""`kubetune best NAME [-n NS]`: the best configuration of a sweep, as YAML to reuse."""

import argparse
import asyncio
import sys
from typing import Any

import yaml

from kubetune.spec import BestTrial, SpecError, SweepStatus, parse_sweep


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
    from kubetune.local.outputs import best_document

    name = body.get("metadata", {}).get("name", "?")
    status = SweepStatus.model_validate(
        {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}
    )
    if status.best is None:
        raise ValueError(f"sweep {name} has no succeeded trial yet (phase {status.phase})")
    plain = {k: body.get(k) for k in ("apiVersion", "kind", "spec")}
    plain["metadata"] = {"name": name}
    try:
        spec = parse_sweep(plain, name).spec
    except SpecError as error:
        raise ValueError(f"sweep {name} has an invalid spec: {error}") from None
    header = _header(name, status.objective or "objective", status.best)
    body_yaml = yaml.safe_dump(best_document(spec, status.best), sort_keys=False)
    return header + body_yaml


def _header(name: str, objective: str, best: BestTrial) -> str:
    metrics = objective.split(",")
    values = best.values if best.values is not None else [best.value]
    scores = ", ".join(f"{m}={v}" for m, v in zip(metrics, values, strict=False))
    step = f" at step {best.step}" if best.step is not None else ""
    return f"# Best trial of {name}: {best.trial}, {scores}{step}\n"


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
