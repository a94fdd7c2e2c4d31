"""The local sweep loop: the engine decides, trial subprocesses run, scrapes feed pruning."""

import asyncio
import logging
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetune import conventions, trial_folders
from kubetune.conventions import trial_name
from kubetune.engine import Completion, SweepEngine, TrialPlan
from kubetune.local.board import Board, TrialRow, format_params, format_value
from kubetune.local.launch import build_launch
from kubetune.local.layout import STATE_FILE, TERMINATION_LOG, TRIAL_LOG, TRIALS_DIR
from kubetune.local.leftovers import end_group
from kubetune.local.outcome import process_ending, read_result
from kubetune.local.process import LaunchError, TrialProcess
from kubetune.local.progress import ProgressView
from kubetune.local.state import RunState, TrialAttempt, save_state
from kubetune.metrics import ScrapeSource, TrialReading, TrialTarget
from kubetune.metrics.logs import LogFileSource, log_reading
from kubetune.spec import SweepSpec
from kubetune.trial_ending import StopReason, judge, note_extremes
from kubetune.trial_readings import fold_reading
from kubetune.trial_result import resumed_note

log = logging.getLogger(__name__)

# Longest pause between two passes of the loop while waiting for trials to exit.
_TICK_SECONDS = 0.5


@dataclass
class RunningTrial:
    plan: TrialPlan
    process: TrialProcess
    port: int
    trial_dir: Path
    waiter: asyncio.Task[int]
    attempt: TrialAttempt
    stop_reason: StopReason | None = None
    last: TrialReading | None = None
    reported_step: int = -1
    # Where this attempt's output begins in trial.log (a rerun appends to the same file).
    log_start: int = 0
    # Least and greatest evaluation of each objective read (TrialEnding.seen).
    seen: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


@dataclass
class RunResult:
    completion: Completion | None
    interrupted: bool
    # Trials that were running when the run stopped and will run again on --resume.
    requeued: list[int] = field(default_factory=list)
    # Why the run stopped early when the output folder could not be written (disk full...).
    write_error: str | None = None


class LocalRunner:
    """Runs one sweep's trials as local subprocesses until the engine says it is finished.

    stop (an Event set on Ctrl-C) stops every trial with SIGTERM, then SIGKILL after
    grace_seconds; a trial that still completes in that time is kept, the others are
    requeued for --resume. hurry (a second Ctrl-C) skips the grace. When the output folder
    cannot be written (a full disk), the run stops the same way, and state.json keeps its
    last good copy, from which --resume continues.
    """

    def __init__(
        self,
        spec: SweepSpec,
        sweep: str,
        engine: SweepEngine,
        output: Path,
        state: RunState,
        view: ProgressView,
        poll_seconds: float,
        grace_seconds: float = 10.0,
        gpus_per_trial: int = 0,
    ) -> None:
        self.spec = spec
        self.sweep = sweep
        self.engine = engine
        self.output = output
        self.state = state
        self.view = view
        self.poll_seconds = poll_seconds
        self.grace_seconds = grace_seconds
        # Locally nothing assigns GPUs: a trial counts those the user says it uses.
        self.gpus_per_trial = gpus_per_trial
        self.timeout = spec.budget.trial_timeout_seconds()
        self.objectives = [o.metric for o in spec.objective_list]
        self.source = ScrapeSource(path=spec.metrics.scrape.path, timeout=2.0)
        logs = log_reading(spec)
        # spec.metrics.logs: each trial's values come from its trial.log, not its /metrics.
        self.logs = LogFileSource(logs) if logs is not None else None
        self.trials: dict[int, RunningTrial] = {}
        self.board = Board(
            sweep=sweep,
            metric=self.objectives[0],
            direction=spec.objective_list[0].direction,
            max_trials=spec.budget.max_trials,
        )
        self._saved = ""
        self.write_error: str | None = None
        self._load_board()

    async def run(self, stop: asyncio.Event, hurry: asyncio.Event) -> RunResult:
        completion: Completion | None = None
        interrupted = False
        requeued: list[int] = []
        next_poll = 0.0
        loop = asyncio.get_running_loop()
        # Saved before any trial folder exists: a disk that is already full stops the run
        # here, leaving no trials/ without a state.json that a later run would refuse.
        self.checkpoint()
        try:
            while True:
                if (stop.is_set() or self.write_error) and not interrupted:
                    interrupted = True
                    if self.write_error:
                        self.view.event(f"{self.write_error}: stopping the trials")
                    self._stop_all("interrupted")
                if hurry.is_set():
                    for trial in self.trials.values():
                        trial.process.kill_at = 0.0
                if not interrupted and completion is None:
                    for plan in self.engine.start_trials():
                        await self._launch(plan)
                    if not self.trials and self.write_error is None:
                        completion = self.engine.finished()
                        if completion is None:
                            # Nothing runs and nothing may start (spec.suspend): do not spin.
                            self.view.event("no trial can start (is spec.suspend true?)")
                        break
                if loop.time() >= next_poll:
                    await self._poll_metrics()
                    next_poll = loop.time() + self.poll_seconds
                if not interrupted and completion is None:
                    self._apply_pruning()
                    self._apply_timeouts()
                    completion = self.engine.finished()
                    if completion is not None and self.trials:
                        self.view.event(f"sweep finished ({completion.reason}): stopping the rest")
                        self._stop_all("finished")
                for trial in self.trials.values():
                    trial.process.kill_if_overdue()
                for number in await self._reap(stop):
                    if self.engine.trial(number).state == "Requeued":
                        requeued.append(number)
                self._refresh()
                if (interrupted or completion is not None) and not self.trials:
                    break
        finally:
            await self.source.aclose()
            self.checkpoint(completion)
        return RunResult(completion, interrupted, sorted(set(requeued)), self.write_error)

    def checkpoint(self, completion: Completion | None = None) -> None:
        """Save state.json when anything changed: a crash loses at most the trials in flight.

        A failed save sets write_error (the run then stops) and leaves the last good copy.
        """
        self.state.history = self.engine.history()
        if completion is not None:
            self.state.completion = completion.reason
        snapshot = self.state.model_dump_json(exclude={"updated_at"})
        if snapshot != self._saved:
            path = self.output / STATE_FILE
            try:
                save_state(path, self.state)
            except OSError as error:
                self._write_failed(path, error)
                return
            self._saved = snapshot

    def _write_failed(self, path: Path, error: OSError) -> None:
        if self.write_error is None:
            self.write_error = f"cannot write {path}: {error.strerror or error}"

    # ---- launching -------------------------------------------------------------------

    async def _launch(self, plan: TrialPlan) -> None:
        if self.write_error is not None:
            return  # stays pending: the run is stopping, --resume launches it
        trial_dir = self.output / TRIALS_DIR / plan.name
        token = f"{plan.attempt}-{secrets.token_hex(4)}"
        port = _free_port()
        launch = build_launch(
            self.spec, self.sweep, plan.name, plan.params, port, trial_dir, attempt=token
        )
        try:
            _clear_previous_attempt(trial_dir)
            log_start = _size(trial_dir / TRIAL_LOG)
            process = await TrialProcess.start(launch, trial_dir)
        except LaunchError as error:
            self.engine.fail(plan.number, f"LaunchFailed: {error}")
            self.view.event(f"{plan.name} could not start: {error}")
            return
        except OSError as error:
            self._write_failed(Path(error.filename or trial_dir), error)
            return
        self.engine.mark_running(plan.number)
        waiter = asyncio.create_task(process.wait())
        attempt = process.attempt(token)
        self.state.in_flight[plan.number] = attempt
        self.trials[plan.number] = RunningTrial(
            plan, process, port, trial_dir, waiter, attempt, log_start=log_start
        )
        again = f" (attempt {plan.attempt})" if plan.attempt > 1 else ""
        self.board.rows[plan.number] = TrialRow(plan.number, plan.name, dict(plan.params))
        self.view.event(f"{plan.name} started{again}  {format_params(plan.params, 200)}")
        self.checkpoint()

    # ---- watching --------------------------------------------------------------------

    async def _read_trials(self) -> dict[str, TrialReading]:
        running = [t for t in self.trials.values() if t.process.returncode is None]
        if self.logs is not None:
            found = {}
            for trial in running:
                reading = self._read_log(trial)
                if reading is not None:
                    found[trial.plan.name] = reading
            return found
        targets = [TrialTarget(t.plan.name, "127.0.0.1", t.port) for t in running]
        if not targets:
            return {}
        return await self.source.collect("local", self.sweep, targets)

    def _read_log(self, trial: RunningTrial, ended: bool = False) -> TrialReading | None:
        assert self.logs is not None
        return self.logs.read(
            trial.plan.name,
            trial.attempt.token,
            trial.trial_dir / TRIAL_LOG,
            start=trial.log_start,
            ended=ended,
        )

    async def _poll_metrics(self) -> None:
        found = await self._read_trials()
        for trial in self.trials.values():
            metrics = found.get(trial.plan.name)
            if metrics is None:
                continue
            trial.last = metrics
            point = fold_reading(trial.seen, metrics, self.objectives, self.spec.multi_objective)
            row = self.board.rows[trial.plan.number]
            row.step = metrics.step
            evaluation = metrics.evaluation(self.objectives[0])
            if evaluation is None:
                continue
            at, value = evaluation
            row.value = value
            if point is not None and point[0] > trial.reported_step:
                trial.reported_step = point[0]
                self.engine.report(trial.plan.number, *point)
                self.view.detail(
                    f"{trial.plan.name} step {at}  {self.objectives[0]}={format_value(value)}"
                )

    def _apply_pruning(self) -> None:
        for number in self.engine.to_prune():
            trial = self.trials.get(number)
            if trial is not None and trial.stop_reason is None:
                trial.stop_reason = "pruned"
                trial.process.terminate(self.grace_seconds)
                self.board.rows[number].state = "Stopping"
                self.board.rows[number].note = "pruning"

    def _apply_timeouts(self) -> None:
        if self.timeout is None:
            return
        for trial in self.trials.values():
            if trial.stop_reason is None and trial.process.elapsed() > self.timeout:
                trial.stop_reason = "timeout"
                trial.process.terminate(self.grace_seconds)
                self.board.rows[trial.plan.number].note = "timed out"
                self.view.event(
                    f"{trial.plan.name} ran past trialTimeout ({self.spec.budget.trial_timeout})"
                )

    def _stop_all(self, reason: StopReason) -> None:
        for trial in self.trials.values():
            if trial.stop_reason in (None, "pruned"):
                trial.stop_reason = reason if trial.stop_reason is None else trial.stop_reason
                trial.process.terminate(self.grace_seconds)
                self.board.rows[trial.plan.number].state = "Stopping"

    # ---- recording -------------------------------------------------------------------

    async def _reap(self, stop: asyncio.Event) -> list[int]:
        """Wait a tick for trials to exit (or for Ctrl-C); record the ones that did."""
        stopper = asyncio.create_task(stop.wait())
        tasks: list[asyncio.Task[Any]] = [t.waiter for t in self.trials.values()]
        try:
            await asyncio.wait(
                [*tasks, stopper],
                timeout=min(_TICK_SECONDS, self.poll_seconds),
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stopper.cancel()
        ended = [n for n, t in self.trials.items() if t.waiter.done()]
        for number in ended:
            self._record(self.trials.pop(number))
        return ended

    def _record(self, trial: RunningTrial) -> None:
        number = trial.plan.number
        exit_code = trial.waiter.result()
        # Its first process is gone; what it started must not outlive it (as in a pod).
        end_group(trial.attempt, 0.0)
        self.state.in_flight.pop(number, None)
        if self.logs is not None:
            # The whole log is there now: its last lines hold the final values.
            final = self._read_log(trial, ended=True)
            self.logs.forget(trial.plan.name)
            if final is not None:
                trial.last = final
                note_extremes(trial.seen, final, self.objectives)
        ending = process_ending(
            exit_code,
            read_result(trial.trial_dir, trial.attempt.token),
            trial.stop_reason,
            trial.last,
            self.spec.budget.trial_timeout,
            trial.process.log_tail(),
            seen=trial.seen,
            gpu_seconds=self.gpus_per_trial * trial.process.elapsed(),
            earlier_gpu_seconds=self.engine.trial(number).gpu_seconds or 0,
        )
        self.engine.conclude(
            number, judge(ending, self.spec.objective_list, self.spec.additional_metrics)
        )
        self.state.wall_seconds[number] = round(trial.process.elapsed(), 1)
        record = self.engine.trial(number)
        if self.spec.trainer is not None:
            # A pruned or failed trial was stopped and kept its checkpoint to resume from;
            # it never will: keepCheckpoints applies as to a trial that ran to its end.
            keep = self.spec.trainer.keep_checkpoints
            names = trial_folders.doomed(keep, record.state)
            for problem in trial_folders.remove(trial.trial_dir, names):
                self.view.event(f"{trial.plan.name}: {problem} (keepCheckpoints {keep})")
        row = self.board.rows[number]
        row.state = record.state
        row.elapsed = trial.process.elapsed()
        row.note = record.reason or ""
        if record.values:
            row.value = record.values[0]
        if record.step is not None:
            row.step = record.step
        self._event_for(
            trial.plan.name,
            record.state,
            record.values,
            record.step,
            record.reason,
            resumed_note(ending.result),
        )
        self.checkpoint()

    def _event_for(
        self,
        name: str,
        state: str,
        values: list[float] | None,
        step: int | None,
        reason: str | None,
        note: str = "",
    ) -> None:
        if state == "Succeeded" and values:
            scores = "  ".join(
                f"{m}={format_value(v)}" for m, v in zip(self.objectives, values, strict=False)
            )
            best = self.engine.best()
            mark = "  (best so far)" if best is not None and best.trial == name else ""
            self.view.event(f"{name} succeeded  {scores} at step {step}{mark}{note}")
        elif state == "Pruned":
            self.view.event(f"{name} pruned at step {step}")
        elif state == "Requeued":
            self.view.event(f"{name} stopped, will run again on --resume ({reason})")
        else:
            self.view.event(f"{name} {state.lower()}: {reason}")

    # ---- view ------------------------------------------------------------------------

    def _load_board(self) -> None:
        for record in self.engine.history():
            row = TrialRow(
                record.number,
                trial_name(self.sweep, record.number),
                dict(record.params),
                record.state,
            )
            row.value = record.values[0] if record.values else None
            row.step = record.step
            row.note = record.reason or ""
            row.elapsed = self.state.wall_seconds.get(record.number, 0.0)
            self.board.rows[record.number] = row

    def _refresh(self) -> None:
        for number, trial in self.trials.items():
            self.board.rows[number].elapsed = trial.process.elapsed()
        counts = self.engine.counts()
        self.board.counts = counts.model_dump()
        best = self.engine.best()
        self.board.best_trial = best.trial if best else None
        self.board.best_value = None if best is None else best.value
        self.view.update(self.board)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _clear_previous_attempt(trial_dir: Path) -> None:
    """An old result must not pass for the new attempt's. Its checkpoint stays: a trial
    stopped by Ctrl-C resumes from it on --resume (the trainer refuses one of other
    parameters)."""
    (trial_dir / conventions.RESULT_FILE).unlink(missing_ok=True)
    for log in trial_dir.glob(f"{TERMINATION_LOG}*"):
        log.unlink(missing_ok=True)
