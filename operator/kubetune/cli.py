"""The `kubetune` command line. Each subcommand lives in kubetune.commands.<name>."""

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommand modules, each exposing `add_parser(subparsers)` and `main(args) -> int`.
# Imported lazily so `kubetune validate` never pays for torch, kopf or optuna.
COMMANDS: dict[str, str] = {
    "validate": "Check sweep manifests without a cluster.",
    "crd": "Print the HyperparameterSweep CustomResourceDefinition.",
    "run": "Run a sweep locally: trials as subprocesses, live table, best config, plots.",
    "operator": "Run the Kubernetes operator (what the Helm chart runs).",
    "best": "Print a sweep's best configuration as YAML ready to reuse.",
    "export": "Write a sweep's trials as an Optuna journal for optuna-dashboard.",
    "import-katib": "Convert Katib Experiments to HyperparameterSweeps.",
}


# The extra (pyproject.toml) with what `run`, `best` and `operator` import.
OPERATOR_EXTRA = "operator"


def _module(command: str) -> str:
    """A command's module name: import-katib lives in kubetune.commands.import_katib."""
    return command.replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubetune", description="Hyperparameter sweeps for LLM fine-tuning."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"kubetune.commands.{_module(name)}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(f"kubetune.commands.{_module(args.command)}")
    try:
        code: int = module.main(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] == "kubetune":
            raise
        # The base install is the trainer's contract only; `validate` and `crd` work with it.
        print(
            f"kubetune {args.command}: needs {error.name}, which is not installed; "
            f"install kubetune's operator extra: pip install 'kubetune[{OPERATOR_EXTRA}]'",
            file=sys.stderr,
        )
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
