"""`kubetune export NAME [-n NS] -o FILE`: a cluster sweep's trials as an Optuna journal."""

import argparse
import sys
from pathlib import Path
from typing import Any

from kubetune.commands.cluster_sweep import SweepUnreadable, read_sweep, spec_of


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="Write a sweep's trials as an Optuna journal for optuna-dashboard.",
        description="Write the finished trials of a HyperparameterSweep in the cluster "
        "(its status.history) to an Optuna journal file, the same file `kubetune run` "
        "leaves locally: open it with `optuna-dashboard FILE`.",
    )
    parser.add_argument("name", help="Sweep name.")
    parser.add_argument(
        "-n", "--namespace", default=None, help="Namespace (default: the context's)."
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="Journal file to write, replaced if it exists (default: NAME.journal).",
    )
    parser.add_argument("--kubeconfig", default=None, help="Path of the kubeconfig file.")


def write(body: dict[str, Any], path: Path) -> int:
    """Write the sweep object's history to path; ValueError names what is wrong with it."""
    from pydantic import ValidationError

    from kubetune.journal import export_history
    from kubetune.spec import SweepStatus

    name = body.get("metadata", {}).get("name", "?")
    spec = spec_of(body)
    try:
        status = SweepStatus.of(body)
    except ValidationError as error:
        problems = "; ".join(
            f"status.{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ValueError(f"sweep {name} has a status kubetune cannot read: {problems}") from None
    try:
        return export_history(spec, name, status.history, path)
    except ValueError as error:  # HistoryError included: a record the spec cannot hold
        raise ValueError(f"sweep {name}: status.history: {error}") from None


def main(args: argparse.Namespace) -> int:
    path: Path = args.output or Path(f"{args.name}.journal")
    try:
        body = read_sweep(args.name, args.namespace, args.kubeconfig)
    except SweepUnreadable as error:
        print(f"kubetune export: {error}", file=sys.stderr)
        return 1
    try:
        count = write(body, path)
    except ValueError as error:
        print(f"kubetune export: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"kubetune export: cannot write {path}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"wrote {count} finished trial(s) of {args.name} to {path}")
    print(f"  browse the study: optuna-dashboard {path}")
    return 0
