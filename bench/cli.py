"""What the benchmark CLIs share: one compute thread, and the flags every bench takes.

A bench imports this module before anything that loads torch or numpy.
"""

import os

# On a shared 2-core machine, two bench processes with torch's default thread count each
# spun threads against the other's: a 10-seed GP arm of bench/search_peers.py gave no result
# in 9 CPU-minutes that took 36 s with one thread each. Benchmarks must measure the
# algorithm, not thread contention. The libraries read these
# once, when they load, hence at this module's import; setdefault keeps a caller's choice.
# Benchmarks only: the product leaves its users' thread settings alone.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import json  # noqa: E402
from argparse import ArgumentParser, Namespace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from bench import finetune_curves  # noqa: E402  (loads numpy: after the pinning)


def common_parser(
    doc: str | None, results: Path, *, table: bool = False, render: bool = False
) -> ArgumentParser:
    """A parser with --quick, --seeds and --out (default ``results``), and when asked
    --table (the fine-tuning curves) and --render; the bench adds its own flags."""
    parser = ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--seeds", type=int, help="override the number of seeds")
    if table:
        parser.add_argument(
            "--table", type=Path, default=finetune_curves.DATA, help="fine-tuning curves JSONL"
        )
    parser.add_argument("--out", type=Path, default=results, help="results folder")
    if render:
        parser.add_argument(
            "--render",
            action="store_true",
            help="only rebuild the report from --out's JSON (no new runs)",
        )
    return parser


def seeds(parser: ArgumentParser, args: Namespace, default: int) -> int:
    """--seeds when given (a clear error below 1), else ``default``."""
    if args.seeds is None:
        return default
    if args.seeds < 1:
        parser.error("--seeds: must be >= 1")
    return int(args.seeds)


def write_report(out: Path, name: str, report: dict[str, Any], text: str) -> None:
    """``<name>.json`` (the figures) and ``<name>.md`` (the page) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text(text)
