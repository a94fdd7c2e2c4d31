"""One `kubetune run`: check the input, set up the output folder, run, report."""

import asyncio
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from kubetune.builders.errors import BuildError
from kubetune.conventions import trial_name
from kubetune.engine import HistoryError, SweepEngine
from kubetune.local.launch import build_launch
from kubetune.local.layout import OUTPUT_NAMES, STATE_FILE
from kubetune.local.leftovers import end_group
from kubetune.local.lock import FolderBusy, FolderLock
from kubetune.local.prepare import (
    build_tiny,
    local_prefetch,
    needs_tiny,
    prefetch,
    prefetch_timeout,
)
from kubetune.local.progress import ProgressView
from kubetune.local.report import Outputs, write_outputs
from kubetune.local.runner import LocalRunner, RunResult
from kubetune.local.state import RunState, StateError, load_state, now, spec_dump
from kubetune.spec import (
    HyperparameterSweep,
    SpecError,
    SweepSpec,
    auto_pruning,
    effective_spec,
    load_sweep,
)
from kubetune.spec.checks import semantic_problems
from kubetune.spec.durations import parse_duration
from kubetune.spec.hub import repos_key
from kubetune.spec.identity import as_started, study_changes, study_digest
from kubetune.spec.parameters import sample_point
from kubetune.trial_ending import REASON_INTERRUPTED

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
    # Held until the process ends (or release()): no second run in the same folder.
    lock: FolderLock | None = None
    # What preparing did that the user should hear about (leftover processes ended).
    notes: list[str] = field(default_factory=list)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


def prepare(
    sweep_file: str,
    output: str | None,
    resume: bool,
    overwrite: bool,
    grace_seconds: float = 10.0,
    name: str | None = None,
) -> Prepared:
    """Load and check everything before any trial starts; BadInput says what is wrong.

    `name` picks one sweep of a multi-document file. The output folder is locked first,
    so two runs never share it, and only then read: --resume and --overwrite end the
    processes a killed run left behind; --overwrite removes kubetune's own outputs
    (layout.OUTPUT_NAMES), and only from a folder whose state.json is a kubetune run's.
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
    lock = _lock(folder, create=not resume)
    try:
        notes: list[str] = []
        if resume:
            state, spec = _resumed_state(sweep_file, folder, sweep.name, sweep.spec, spec)
        else:
            _replace_previous_run(folder, overwrite, grace_seconds, notes)
            state = RunState(sweep=sweep.name, spec=spec_dump(spec), started_at=now())
        notes += _end_leftovers(state, grace_seconds)
        try:
            engine = SweepEngine(spec, sweep.name, history=state.history)
        except (HistoryError, ValueError) as error:
            raise BadInput([f"{folder / STATE_FILE}: {error}"]) from None
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if spec.early_stopping.name != "none":
        # The default prunes from 4 trials at once, and the startup trials below that: say
        # so, or pruned trials surprise.
        said = auto_pruning.explain(sweep.spec)
        notes += [said] if said else []
    # Trials that were running when a previous run died run again, same params.
    for number in engine.running():
        engine.requeue(number, REASON_INTERRUPTED)
    return Prepared(sweep, spec, engine, state, folder, sweep_file, lock, notes)


def _lock(folder: Path, create: bool) -> FolderLock | None:
    """The folder's lock; None for a --resume in a folder that does not exist (which then
    fails on the missing state.json, without creating the folder)."""
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        elif not folder.is_dir():
            return None
        return FolderLock.acquire(folder)
    except FolderBusy as error:
        raise BadInput([str(error)]) from None
    except OSError as error:
        raise BadInput([f"--output: {folder}: cannot use it: {error.strerror}"]) from None


def _resumed_state(
    sweep_file: str, folder: Path, name: str, written: SweepSpec, spec: SweepSpec
) -> tuple[RunState, SweepSpec]:
    """The saved run state, and the effective spec the resumed study runs under."""
    try:
        state = load_state(folder / STATE_FILE)
    except StateError as error:
        raise BadInput([f"--resume: {error}"]) from None
    if state.sweep != name:
        raise BadInput([f"--resume: {folder} holds sweep {state.sweep!r}, not {name!r}"])
    try:
        saved = SweepSpec.model_validate(state.spec)
    except ValidationError:
        raise BadInput(
            [f"--resume: {folder / STATE_FILE}: spec: not a kubetune sweep spec"]
        ) from None
    spec = as_started(written, spec, study_digest(saved))
    changed = study_changes(saved, spec)
    if changed:
        raise BadInput(
            [
                f"{sweep_file}: {field}: changed since the run in {folder} started; "
                "a resumed study must keep its search space, objective and algorithm "
                "(use another --output)"
                for field in changed
            ]
        )
    state.spec = spec_dump(spec)
    state.completion = None
    return state, spec


def _replace_previous_run(
    folder: Path, overwrite: bool, grace_seconds: float, notes: list[str]
) -> None:
    """Make room for a new run: nothing there, or (--overwrite) a kubetune run to replace.

    Nothing is deleted unless state.json parses as kubetune's run state, and then only the
    names in OUTPUT_NAMES: a user's own files in the folder stay.
    """
    state_path = folder / STATE_FILE
    if not state_path.exists():
        ours = sorted(name for name in OUTPUT_NAMES if (folder / name).exists())
        if ours:
            raise BadInput(
                [
                    f"--output: {folder} holds {', '.join(ours)} but no {STATE_FILE}: not a "
                    "kubetune run to resume or replace; remove them or choose another --output"
                ]
            )
        return
    if not overwrite:
        raise BadInput(
            [
                f"--output: {folder} already holds a run; pass --resume to continue it "
                "or --overwrite to start over"
            ]
        )
    try:
        previous = load_state(state_path, any_version=True)
    except StateError as error:
        raise BadInput(
            [
                f"--overwrite: {error}; --overwrite only replaces a kubetune run, "
                "nothing was deleted (remove the file yourself or choose another --output)"
            ]
        ) from None
    notes += _end_leftovers(previous, grace_seconds)
    for name in OUTPUT_NAMES:
        path = folder / name
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as error:
            raise BadInput([f"--overwrite: cannot remove {path}: {error.strerror}"]) from None


def _end_leftovers(state: RunState, grace_seconds: float) -> list[str]:
    """End the processes of trials a killed run left running; a note for each one ended."""
    notes = [
        f"{trial_name(state.sweep, number)}: ended processes left running by the previous "
        f"run (process group {attempt.pgid})"
        for number, attempt in sorted(state.in_flight.items())
        if end_group(attempt, grace_seconds)
    ]
    state.in_flight.clear()
    return notes


def _check_launchable(source: str, spec: SweepSpec, name: str) -> None:
    """Build one trial's command from sample params, so a bad template fails before trials do."""
    sample = sample_point(spec.parameters)
    try:
        build_launch(spec, name, f"{name}-t0000", sample, 0, Path("."), base_env={})
    except BuildError as error:
        raise BadInput([f"{source}: {error.field}: {error.rule}"]) from None


def execute(
    prepared: Prepared, view: ProgressView, grace_seconds: float, gpus_per_trial: int = 0
) -> RunResult:
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
        gpus_per_trial=gpus_per_trial,
    )

    async def main() -> RunResult:
        for note in prepared.notes:
            view.event(note)
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
                    return RunResult(
                        None, interrupted=stop.is_set(), write_error=runner.write_error
                    )
            repos = local_prefetch(prepared.spec, os.environ)
            if repos:
                view.event(f"downloading {repos_key(repos)} once, before the trials")
                timeout = prefetch_timeout(prepared.spec)
                problem = await prefetch(prefetch_env(prepared), stop, timeout)
                if problem is not None:
                    if problem != "interrupted":
                        view.event(problem)
                    runner.checkpoint()
                    return RunResult(
                        None, interrupted=stop.is_set(), write_error=runner.write_error
                    )
            return await runner.run(stop, hurry)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with view:
        return asyncio.run(main())


def prefetch_env(prepared: Prepared) -> dict[str, str]:
    """The environment a trial of this run gets (its trainer.env, secrets from the shell,
    the trainer config): what the prefetch reads the model, dataset and HF_TOKEN from."""
    name = prepared.sweep.name
    sample = sample_point(prepared.spec.parameters)
    folder = prepared.output / "trials"
    launch = build_launch(prepared.spec, name, f"{name}-t0000", sample, 0, folder)
    return launch.env


def finish(
    prepared: Prepared, result: RunResult, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    """Write the outputs, print the best config and where everything is; the exit status.

    A folder that cannot be written (a full disk) gets one line on err, and exit 1: the
    last saved state.json is intact, and --resume continues (and writes the outputs).
    """
    again = (
        f"free space, then continue with: kubetune run {prepared.source} --resume "
        f"--output {prepared.output}"
    )
    if result.write_error is not None:
        print(f"kubetune run: {result.write_error}; the run stopped: {again}", file=err)
        return EXIT_SWEEP_FAILED
    try:
        outputs = write_outputs(
            prepared.output,
            prepared.sweep.name,
            prepared.spec,
            prepared.engine,
            prepared.state.wall_seconds,
        )
    except OSError as error:
        where = error.filename or f"the outputs in {prepared.output}"
        print(
            f"kubetune run: cannot write {where}: {error.strerror or error}; "
            f"{prepared.output / STATE_FILE} is saved: {again}",
            file=err,
        )
        return EXIT_SWEEP_FAILED
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
