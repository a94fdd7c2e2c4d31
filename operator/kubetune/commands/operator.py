"""`kubetune operator`: run the Kubernetes operator (what the Helm chart runs)."""

import argparse
from typing import Any


def add_parser(subparsers: Any) -> None:
    from kubetune.operator.options import add_arguments

    parser = subparsers.add_parser(
        "operator",
        help="Run the kubetune operator against the current cluster.",
        description="Run the Kopf operator that turns HyperparameterSweeps into trial pods.",
    )
    add_arguments(parser)


def main(args: argparse.Namespace) -> int:
    from kubetune.operator.main import run

    return run(args)
