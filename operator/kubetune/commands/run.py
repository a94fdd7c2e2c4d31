"""`kubetune run SWEEP.yaml`: run a sweep's trials as local subprocesses, no cluster needed."""

import argparse
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="Run a sweep locally: trials as subprocesses, live table, best config, plots.",
        description=(
            "Run every trial of a HyperparameterSweep as a local subprocess (the built-in "
            "trainer or the template's command), prune per earlyStopping, and write "
            "trials.csv, best.yaml, plots and an Optuna journal to the output folder. "
            "Exit 0: finished; 1: the sweep failed, or the output folder could not be "
            "written (the run then resumes from its last saved state); 2: bad input; "
            "130: stopped (Ctrl-C)."
        ),
    )
    parser.add_argument("sweep", metavar="SWEEP.yaml", help="the HyperparameterSweep manifest")
    parser.add_argument(
        "--name",
        metavar="NAME",
        help="the sweep to run when SWEEP.yaml holds several (metadata.name)",
    )
    parser.add_argument(
        "-o", "--output", metavar="DIR", help="output folder (default: runs/<sweep name>)"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue a stopped run from its output folder: no trial repeated or lost",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous run in the output folder (only kubetune's own files)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time a stopped trial gets between SIGTERM and SIGKILL (default 10)",
    )
    parser.add_argument(
        "--gpus-per-trial",
        type=int,
        default=0,
        metavar="N",
        help=(
            "GPUs each local trial uses, for GPU-hour accounting (budget.maxGpuHours, the "
            "gpu_hours objective, trials.csv); default 0: kubetune run assigns no GPUs"
        ),
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="log lines instead of the live table (the default when output is not a terminal)",
    )


def main(args: argparse.Namespace) -> int:
    # Imported here: building the CLI parser must not pay for optuna and matplotlib.
    from kubetune.local.progress import make_view
    from kubetune.local.session import EXIT_BAD_INPUT, BadInput, execute, finish, prepare

    if args.resume and args.overwrite:
        print("--resume and --overwrite: choose one", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.grace < 0:
        print(f"--grace: must be >= 0, got {args.grace}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.gpus_per_trial < 0:
        print(f"--gpus-per-trial: must be >= 0, got {args.gpus_per_trial}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        prepared = prepare(
            args.sweep, args.output, args.resume, args.overwrite, args.grace, args.name
        )
    except BadInput as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        view = make_view(live=False if args.plain else None)
        result = execute(prepared, view, args.grace, args.gpus_per_trial)
        return finish(prepared, result)
    finally:
        prepared.release()
