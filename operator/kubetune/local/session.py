"""One `kubetune run`: check the input, set up the output folder, run, report."""

import asyncio
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from kubetune.builders.errors import BuildError
from kubetune.engine import HistoryError, SweepEngine
from kubetune.local.launch import build_launch
from kubetune.local.outcome import REASON_INTERRUPTED
from kubetune.local.prepare import build_tiny, needs_tiny
from kubetune.local.progress import ProgressView
from kubetune.local.report import Outputs, write_outputs
from kubetune.local.runner import LocalRunner, RunResult
from kubetune.local.state import (
    STATE_FILE,
    RunState,
    StateError,
    load_state,
    now,
    spec_dump,
    study_changes,
)
from kubetune.spec import HyperparameterSweep, SpecError, SweepSpec, effective_spec, load_sweep
from kubetune.spec.checks import semantic_problems
from kubetune.spec.durations import parse_duration

EXIT_OK = 0
EXIT_SWEEP_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
# Local trials are read at least this often, whatever spec.metrics.interval says.
MAX_LOCAL_POLL_SECONDS = 5.0


class BadInput(Exception):
    """Input that cannot run; one line per problem, each naming the field or flag."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Prepared:
    sweep: HyperparameterSweep
    spec: SweepSpec
    engine: SweepEngine
    state: RunState
    output: Path
    source: str


def prepare(
    sweep_file: str, output: str | None, resume: bool, overwrite: bool, name: str | None = None
) -> Prepared:
    """Load and check everything before any trial starts; BadInput says what is wrong.

    `name` picks one sweep of a multi-document file.
    """
    try:
        sweep = load_sweep(sweep_file, name)
        # A local trial runs its command here: a template container needs no image.
        problems = semantic_problems(sweep, for_cluster=False)
        if problems:
            raise SpecError(sweep_file, problems)
    except SpecError as error:
        raise BadInput([f"{error.source}: {p}" for p in error.problems]) from None
    spec = effective_spec(sweep.spec)
    _check_launchable(sweep_file, spec, sweep.name)
    folder = Path(output) if output else Path("runs") / sweep.name
    state_path = folder / STATE_FILE
    if resume:
        try:
            state = load_state(state_path)
        except StateError as error:
            raise BadInput([f"--resume: {error}"]) from None
        if state.sweep != sweep.name:
            raise BadInput([f"--resume: {folder} holds sweep {state.sweep!r}, not {sweep.name!r}"])
        changed = study_changes(state.spec, spec)
        if changed:
            raise BadInput(
                [
                    f"{sweep_file}: {field}: changed since the run in {folder} started; "
                    "a resumed study must keep its search space (use another --output)"
                    for field in changed
                ]
            )
        state.spec = spec_dump(spec)
        state.completion = None
    else:
        if state_path.exists():
            if not overwrite:
                raise BadInput(
                    [
                        f"--output: {folder} already holds a run; pass --resume to continue it "
                        "or --overwrite to start over"
                    ]
                )
            shutil.rmtree(folder)
        state = RunState(sweep=sweep.name, spec=spec_dump(spec), started_at=now())
    folder.mkdir(parents=True, exist_ok=True)
    try:
        engine = SweepEngine(spec, sweep.name, history=state.history)
    except (HistoryError, ValueError) as error:
        raise BadInput([f"{state_path}: {error}"]) from None
    # Trials that were running when a previous run died run again, same params.
    for number in engine.running():
        engine.requeue(number, REASON_INTERRUPTED)
    return Prepared(sweep, spec, engine, state, folder, sweep_file)


def _check_launchable(source: str, spec: SweepSpec, name: str) -> None:
    """Build one trial's command from sample params, so a bad template fails before trials do."""
    sample = {p.name: _sample(p) for p in spec.parameters}
    try:
        build_launch(spec, name, f"{name}-t0000", sample, 0, Path("."), base_env={})
    except BuildError as error:
        raise BadInput([f"{source}: {error.field}: {error.rule}"]) from None


def _sample(param: object) -> bool | int | float | str:
    values = getattr(param, "values", None)
    if values:
        first: bool | int | float | str = values[0]
        return first
    low: int | float = getattr(param, "min", 0)
    return low


def execute(prepared: Prepared, view: ProgressView, grace_seconds: float) -> RunResult:
    """Run until done or Ctrl-C (SIGINT/SIGTERM); a second Ctrl-C skips the grace period."""
    interval = parse_duration(prepared.spec.metrics.interval)
    runner = LocalRunner(
        prepared.spec,
        prepared.sweep.name,
        prepared.engine,
        prepared.output,
        prepared.state,
        view,
        poll_seconds=min(interval, MAX_LOCAL_POLL_SECONDS),
        grace_seconds=grace_seconds,
    )

    async def main() -> RunResult:
        stop, hurry = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal() -> None:
            if stop.is_set():
                hurry.set()
            else:
                view.event("stopping: SIGTERM to the trials (Ctrl-C again to kill them now)")
                stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        try:
            if prepared.spec.metrics.prometheus is not None:
                view.event(
                    "note: spec.metrics.prometheus is the operator's; local trials are "
                    "scraped directly, each on its own port (KUBETUNE_METRICS_PORT)"
                )
            if needs_tiny(prepared.spec):
                view.event("preparing the tiny model (built once per machine, then cached)")
                problem = await build_tiny(os.environ, stop)
                if problem is not None:
                    if problem != "interrupted":
                        view.event(problem)
                    runner.checkpoint()  # so --resume finds the run
                    return RunResult(None, interrupted=stop.is_set())
            return await runner.run(stop, hurry)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with view:
        return asyncio.run(main())


def finish(prepared: Prepared, result: RunResult, out: TextIO = sys.stdout) -> int:
    """Write the outputs, print the best config and where everything is; the exit status."""
    outputs = write_outputs(
        prepared.output,
        prepared.sweep.name,
        prepared.spec,
        prepared.engine,
        prepared.state.wall_seconds,
    )
    counts = prepared.engine.counts()
    print(
        f"\n{prepared.sweep.name}: {counts.succeeded} succeeded, {counts.pruned} pruned, "
        f"{counts.failed} failed of {counts.total} trials",
        file=out,
    )
    _print_best(prepared, outputs, out)
    print(f"Outputs in {prepared.output}/: {', '.join(outputs.files)}", file=out)
    for note in outputs.notes:
        print(f"  {note}", file=out)
    print(f"  per-trial logs and results: {prepared.output}/trials/<trial>/", file=out)
    print(f"  browse the study: optuna-dashboard {prepared.output}/optuna.journal", file=out)
    if result.interrupted:
        again = (
            f" ({len(result.requeued)} interrupted trial(s) run again)" if result.requeued else ""
        )
        print(
            f"Stopped. Continue with: kubetune run {prepared.source} --resume "
            f"--output {prepared.output}{again}",
            file=out,
        )
        return EXIT_INTERRUPTED
    completion = result.completion
    if completion is None:
        print("Stopped before the sweep finished.", file=out)
        return EXIT_SWEEP_FAILED
    print(
        f"Sweep {'finished' if completion.succeeded else 'FAILED'}: {completion.message}", file=out
    )
    return EXIT_OK if completion.succeeded else EXIT_SWEEP_FAILED


def _print_best(prepared: Prepared, outputs: Outputs, out: TextIO) -> None:
    best = outputs.best
    if best is None:
        print("No trial succeeded.", file=out)
        return
    metrics = [o.metric for o in prepared.spec.objective_list]
    values = best.values if best.values is not None else [best.value]
    scores = ", ".join(
        f"{m}={v:.6g}" for m, v in zip(metrics, values, strict=False) if v is not None
    )
    print(f"Best trial {best.trial}: {scores} at step {best.step}", file=out)
    for name, value in best.parameters.items():
        print(f"  {name}: {value}", file=out)
