"""`kubetune crd`: print, write or check the generated CustomResourceDefinition."""

import argparse
import sys
from pathlib import Path
from typing import Any

from kubetune.crd import CRD_FILE, render_crd


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "crd", help="Print the HyperparameterSweep CRD generated from the spec."
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--write", metavar="PATH", nargs="?", const=CRD_FILE, help="write it to PATH"
    )
    group.add_argument(
        "--check", metavar="PATH", nargs="?", const=CRD_FILE, help="exit 1 if PATH is stale"
    )


def main(args: argparse.Namespace) -> int:
    text = render_crd()
    if args.write:
        Path(args.write).write_text(text, encoding="utf-8")
        print(f"wrote {args.write}")
        return 0
    if args.check:
        path = Path(args.check)
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is stale: run `kubetune crd --write`", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    sys.stdout.write(text)
    return 0
