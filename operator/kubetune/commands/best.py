"""`kubetune best NAME [-n NS]`: the best configuration of a sweep, as YAML to reuse."""

import argparse
import sys
from typing import Any

from kubetune.commands.cluster_sweep import SweepUnreadable, read_sweep, spec_of
from kubetune.spec import SweepStatus


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
    from kubetune.best import artifacts_line, best_scores, best_yaml

    name = body.get("metadata", {}).get("name", "?")
    status = SweepStatus.of(body)
    if status.best is None:
        raise ValueError(f"sweep {name} has no succeeded trial yet (phase {status.phase})")
    spec = spec_of(body)
    metrics = (status.objective or "objective").split(",")
    header = f"# Best trial of {name}: {status.best.trial}, {best_scores(metrics, status.best)}\n"
    return header + artifacts_line(status.best) + best_yaml(spec, status.best)


def main(args: argparse.Namespace) -> int:
    try:
        body = read_sweep(args.name, args.namespace, args.kubeconfig)
    except SweepUnreadable as error:
        print(f"kubetune best: {error}", file=sys.stderr)
        return 1
    try:
        text = render(body)
    except ValueError as error:
        print(f"kubetune best: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0
