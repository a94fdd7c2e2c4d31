"""`kubetune import-katib EXPERIMENT.yaml...`: Katib Experiments as HyperparameterSweeps."""

import argparse
import sys
from typing import Any

import yaml

from kubetune.katib import KatibError, convert
from kubetune.spec import SpecError, parse_sweep
from kubetune.spec.checks import semantic_problems
from kubetune.spec.loader import load_documents

EXIT_INVALID = 2


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "import-katib",
        help="Convert Katib Experiments to HyperparameterSweeps (YAML on stdout).",
        description="Convert Katib kubeflow.org/v1beta1 Experiments to HyperparameterSweep "
        "manifests, printed on stdout (one document per Experiment, separated by ---). What "
        "kubetune cannot express is listed on stderr, one Katib field path a line.",
    )
    parser.add_argument("files", nargs="+", metavar="EXPERIMENT.yaml")


def main(args: argparse.Namespace) -> int:
    failed = False
    printed = 0
    for path in args.files:
        try:
            documents = _read(path)
        except SpecError as error:
            _report(error.source, error.problems)
            failed = True
            continue
        for number, document in enumerate(documents, 1):
            where = path if len(documents) == 1 else f"{path}: document {number}"
            manifest = _convert(where, document)
            if manifest is None:
                failed = True
                continue
            if printed:
                print("---")
            sys.stdout.write(manifest)
            printed += 1
    return EXIT_INVALID if failed else 0


def _read(path: str) -> list[Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise SpecError(path, [f"cannot read file: {error.strerror or error}"]) from None
    return load_documents(text, path)


def _convert(where: str, document: Any) -> str | None:
    """The sweep's YAML; None when the Experiment is unreadable or the sweep invalid."""
    try:
        conversion = convert(document)
    except KatibError as error:
        _report(where, error.problems)
        return None
    for line in conversion.unmapped:
        print(f"{where}: not converted: {line}", file=sys.stderr)
    try:
        sweep = parse_sweep(conversion.sweep, where)
        problems = semantic_problems(sweep)
    except SpecError as error:
        problems = error.problems
    if problems:
        _report(where, [f"the converted sweep is invalid: {p}" for p in problems])
        return None
    return yaml.safe_dump(conversion.sweep, sort_keys=False)


def _report(where: str, problems: list[str]) -> None:
    for problem in problems:
        print(f"{where}: {problem}", file=sys.stderr)
