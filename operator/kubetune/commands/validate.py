"""`kubetune validate FILE...`: check sweep manifests without a cluster."""

import argparse
import sys
from typing import Any

import yaml

from kubetune.spec import HyperparameterSweep, SpecError, effective_spec, load_sweeps
from kubetune.spec.checks import semantic_problems

EXIT_INVALID = 2


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "validate", help="Check HyperparameterSweep manifests without a cluster."
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="print the effective spec, every default included",
    )


def explain(sweep: HyperparameterSweep) -> str:
    manifest = sweep.model_dump(by_alias=True, exclude_none=True, mode="json")
    manifest.pop("status", None)
    manifest["spec"] = effective_spec(sweep.spec).model_dump(
        by_alias=True, exclude_none=True, mode="json"
    )
    return yaml.safe_dump(manifest, sort_keys=False)


def main(args: argparse.Namespace) -> int:
    failed = False
    for path in args.files:
        try:
            sweeps = load_sweeps(path)
            problems = [p for s in sweeps for p in semantic_problems(s)]
            if problems:
                raise SpecError(path, problems)
        except SpecError as error:
            failed = True
            for problem in error.problems:
                print(f"{error.source}: {problem}", file=sys.stderr)
            continue
        for sweep in sweeps:
            if args.explain:
                print("---")
                sys.stdout.write(explain(sweep))
            else:
                print(f"{path}: {sweep.name}: valid")
    return EXIT_INVALID if failed else 0
