"""`kubetune validate FILE...`: check sweep manifests without a cluster."""

import argparse
import sys
from typing import Any

import yaml

from kubetune.builders.errors import BuildError
from kubetune.builders.pod import build_trial_pod
from kubetune.builders.security import PolicyRefused
from kubetune.policy.pod_policy import PodPolicy, PodPolicyError, load_pod_policy
from kubetune.spec import (
    HyperparameterSweep,
    SpecError,
    effective_spec,
    load_sweeps,
)
from kubetune.spec.checks import semantic_problems
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
        "{level, allowedServiceAccounts} (default %(default)s)",
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
        build_trial_pod(sweep, spec, 0, sample, default_image=_OPERATOR_IMAGE, policy=policy)
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
            sweeps = load_sweeps(path)
            problems = [p for s in sweeps for p in semantic_problems(s)]
            if not problems:
                problems = [p for s in sweeps for p in pod_problems(s, policy)]
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
