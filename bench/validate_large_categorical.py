"""Validating a sweep with a long categorical: the old pairwise duplicate check vs the hashed one.

    python bench/validate_large_categorical.py           # 16,000 and 50,000 values (~2-3 min)
    python bench/validate_large_categorical.py --quick   # 2,000 and 5,000 values, prints only

A categorical of 16,000 values took 12 s to check and one of 200,000 never finished: the
duplicate rule compared every value with every earlier one. It now hashes a (type, value) key.
Measured here, worst case (no duplicate, so every value is looked at):

1. the duplicate rule alone, old (copied below as it was) and new (kubetune's), per size;
2. the engine's "equal under == but different types" test, old and new, per size;
3. end to end, parse_sweep + semantic_problems of a manifest: at the maxItems limit (valid),
   and past it (refused with a clear error; the 200,000-value case that used to hang).

A full run writes bench/results/validate_large_categorical.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "operator"))

from kubetune.engine.space import _ambiguous  # noqa: E402
from kubetune.spec import SpecError, parse_sweep  # noqa: E402
from kubetune.spec.checks import semantic_problems  # noqa: E402
from kubetune.spec.parameters import MAX_CHOICES, CategoricalValue, first_duplicate  # noqa: E402

RESULTS = REPO / "bench" / "results"


def old_first_duplicate(values: list[CategoricalValue]) -> CategoricalValue | None:
    """The rule as it was (spec/parameters.py before the fix): every pair compared."""
    seen: list[CategoricalValue] = []
    for value in values:
        if any(type(value) is type(other) and value == other for other in seen):
            return value
        seen.append(value)
    return None


def old_ambiguous(values: list[CategoricalValue]) -> bool:
    """engine/space.py before the fix."""
    for i, first in enumerate(values):
        for second in values[i + 1 :]:
            if first == second:
                return True
    return False


def mixed(count: int) -> list[CategoricalValue]:
    """Distinct values of every allowed type, like a generated list of choices would be."""
    out: list[CategoricalValue] = []
    for i in range(count):
        kind = i % 3
        out.append(i if kind == 0 else float(i) + 0.5 if kind == 1 else f"choice-{i}")
    return out


def seconds(fn: Callable[[], Any], repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return round(best, 6)


def manifest(values: list[CategoricalValue]) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "big"},
        "spec": {
            "parameters": [{"name": "c", "type": "categorical", "values": values}],
            "template": {
                "spec": {"containers": [{"name": "t", "image": "i", "args": ["${params.c}"]}]}
            },
        },
    }


def end_to_end(values: list[CategoricalValue]) -> tuple[float, list[str]]:
    found: list[str] = []

    def run() -> None:
        nonlocal found
        try:
            found = semantic_problems(parse_sweep(manifest(values)))
        except SpecError as error:
            found = error.problems

    return seconds(run, repeats=3), found


def time_rules(values: list[CategoricalValue]) -> dict[str, float]:
    assert old_first_duplicate(values) is None and first_duplicate(values) is None
    assert not old_ambiguous(values) and not _ambiguous(values)
    return {
        "duplicate_rule_old_s": seconds(lambda: old_first_duplicate(values)),
        "duplicate_rule_new_s": seconds(lambda: first_duplicate(values), repeats=5),
        "engine_ambiguous_old_s": seconds(lambda: old_ambiguous(values)),
        "engine_ambiguous_new_s": seconds(lambda: _ambiguous(values), repeats=5),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    args = parser.parse_args()
    sizes = [2_000, 5_000] if args.quick else [16_000, 50_000]

    rules: dict[str, Any] = {}
    for size in sizes:
        rules[str(size)] = time_rules(mixed(size))
        print(size, rules[str(size)], flush=True)

    model: dict[str, Any] = {}
    for size in (MAX_CHOICES, 50_000, 200_000):
        took, problems = end_to_end(mixed(size))
        model[str(size)] = {"seconds": took, "problems": problems}
        print(size, model[str(size)], flush=True)

    out = {
        "benchmark": "validate_large_categorical",
        "quick": args.quick,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "max_items": MAX_CHOICES,
        "rules_no_duplicate_worst_case": rules,
        "parse_and_check_manifest": model,
    }
    if args.quick:
        print(json.dumps(out, indent=2))  # a smoke check: the recorded results stay as they are
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "validate_large_categorical.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / 'validate_large_categorical.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
