"""`kubetune validate FILE...`: check sweep manifests without a cluster."""

import argparse
import sys
from typing import Any

import yaml

from kubetune import KIND
from kubetune.builders.errors import BuildError
from kubetune.builders.security import PolicyRefused
from kubetune.builders.workload import build_trial
from kubetune.policy.pod_policy import PodPolicy, PodPolicyError, load_pod_policy
from kubetune.spec import HyperparameterSweep, SpecError, effective_spec, parse_sweep
from kubetune.spec.checks import semantic_problems, semantic_warnings
from kubetune.spec.loader import Document, SweepFile, read_sweep_file
from kubetune.spec.parameters import sample_point

EXIT_INVALID = 2
# Stands in for the operator's --default-image: a sweep naming no image gets that one.
_OPERATOR_IMAGE = "operator-default-trainer-image"


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "validate", help="Check HyperparameterSweep manifests without a cluster."
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument(
        "--pod-policy",
        metavar="LEVEL|FILE",
        default="restricted",
        help="check trial pods against this pod policy, as the operator will: restricted "
        "(the chart's default), baseline, privileged, or a YAML/JSON file "
        "{level, allowedServiceAccounts, trainingRuntimes} (default %(default)s)",
    )
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


def pod_problems(sweep: HyperparameterSweep, policy: PodPolicy) -> list[str]:
    """What the operator's accept-time build would refuse: the pod of one sample trial."""
    spec = effective_spec(sweep.spec)
    sample = sample_point(spec.parameters)
    try:
        build_trial(sweep, spec, 0, sample, default_image=_OPERATOR_IMAGE, policy=policy)
    except PolicyRefused as error:
        return error.problems
    except BuildError as error:
        return [str(error)]
    return []


def main(args: argparse.Namespace) -> int:
    try:
        policy = load_pod_policy(args.pod_policy, "--pod-policy")
    except PodPolicyError as error:
        for problem in error.problems:
            print(f"{error.source}: {problem}", file=sys.stderr)
        return EXIT_INVALID
    failed = False
    for path in args.files:
        try:
            found = read_sweep_file(path)
        except SpecError as error:
            failed = True
            _print_problems(error)
            continue
        for document in found.skipped:
            print(f"{path}: {document.label}: skipped, kind {document.kind} is not {KIND}")
        for document in found.sweeps:
            failed |= not _check(found, document, args.explain, policy)
    return EXIT_INVALID if failed else 0


def _check(found: SweepFile, document: Document, explain_it: bool, policy: PodPolicy) -> bool:
    """Validate one sweep document and report it; True when it is valid."""
    where = found.where(document)
    try:
        sweep = parse_sweep(document.body, where)
        problems = semantic_problems(sweep) or pod_problems(sweep, policy)
        if problems:
            raise SpecError(where, problems)
    except SpecError as error:
        _print_problems(error)
        return False
    for warning in semantic_warnings(sweep):
        print(f"{where}: warning: {warning}", file=sys.stderr)
    if explain_it:
        print("---")
        sys.stdout.write(explain(sweep))
    else:
        # A multi-document file's prefix names the sweep already.
        print(f"{where}: {sweep.name}: valid" if found.single else f"{where}: valid")
    return True


def _print_problems(error: SpecError) -> None:
    for problem in error.problems:
        print(f"{error.source}: {problem}", file=sys.stderr)
