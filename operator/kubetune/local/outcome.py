"""How a finished trial process is recorded: completed, pruned, failed or requeued (pure)."""

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from kubetune import conventions
from kubetune.local.layout import termination_log_name
from kubetune.metrics import TrialReading, short_name
from kubetune.trial_result import TrialResult

# Why kubetune stopped a trial itself; None when the trial ended on its own.
StopReason = Literal["pruned", "timeout", "interrupted", "finished"]
OutcomeKind = Literal["complete", "prune", "fail", "requeue"]

REASON_TIMEOUT = "Timeout"
REASON_INTERRUPTED = "Interrupted"
REASON_SWEEP_FINISHED = "SweepFinished"


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    values: list[float] | None = None
    step: int | None = None
    reason: str | None = None
    # The objective's eval history from the result file: points the scrapes may have missed.
    intermediate: list[tuple[int, float]] = field(default_factory=list)


def read_result(trial_dir: Path, attempt: str | None = None) -> TrialResult | None:
    """The trial's final result: the termination log, else result.json; None if neither parses.

    Only the given attempt's: its own termination log (the path is the attempt's), and a
    result.json that names this attempt (the built-in trainer stamps KUBETUNE_ATTEMPT on it),
    so what a leftover process of an earlier launch writes late is never taken for it.
    """
    for name in (termination_log_name(attempt), conventions.RESULT_FILE):
        path = trial_dir / name
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if not text:
            continue
        try:
            result = TrialResult.from_message(text)
        except ValidationError:
            continue
        if name != conventions.RESULT_FILE or result.attempt == attempt:
            return result
    return None


def classify(
    exit_code: int,
    result: TrialResult | None,
    stop_reason: StopReason | None,
    last: TrialReading | None,
    objectives: list[str],
    timeout: str | None = None,
    log_tail: str = "",
) -> Outcome:
    """Decide how to record a trial whose process has exited.

    A trial that finished successfully counts as complete even if kubetune was just
    stopping it: the work is done and must not be lost or repeated.
    """
    metrics = [short_name(m) for m in objectives]
    intermediate = list(result.intermediate.get(metrics[0], [])) if result else []
    values, step = _final_values(exit_code, result, last, metrics, stop_reason)
    if values is not None and all(math.isfinite(v) for v in values):
        return Outcome("complete", values, step, intermediate=intermediate)
    if stop_reason == "pruned":
        return Outcome("prune", intermediate=intermediate)
    if stop_reason == "timeout":
        limit = f" ({timeout})" if timeout else ""
        return Outcome(
            "fail",
            reason=f"{REASON_TIMEOUT}: ran past budget.trialTimeout{limit}",
            intermediate=intermediate,
        )
    if stop_reason in ("interrupted", "finished"):
        reason = REASON_INTERRUPTED if stop_reason == "interrupted" else REASON_SWEEP_FINISHED
        return Outcome("requeue", reason=reason, intermediate=intermediate)
    return Outcome("fail", reason=_failure_reason(exit_code, result, values, metrics, log_tail))


def _final_values(
    exit_code: int,
    result: TrialResult | None,
    last: TrialReading | None,
    metrics: list[str],
    stop_reason: StopReason | None,
) -> tuple[list[float] | None, int | None]:
    if exit_code != conventions.EXIT_OK:
        return None, None
    if result is not None:
        if result.status != "succeeded":
            return None, None
        found = [result.metrics.get(m) for m in metrics]
        if all(v is not None for v in found):
            return [float(v) for v in found if v is not None], result.steps or None
        return None, None
    # A template trial may only serve metrics: its last scrape is its final word,
    # trusted only when it ended on its own.
    if last is None or stop_reason is not None:
        return None, None
    scraped = [last.evaluation(m) for m in metrics]
    if all(e is not None for e in scraped):
        return [e[1] for e in scraped if e is not None], max(e[0] for e in scraped if e)
    return None, None


def _failure_reason(
    exit_code: int,
    result: TrialResult | None,
    values: list[float] | None,
    metrics: list[str],
    log_tail: str,
) -> str:
    if values is not None:
        return f"NotFinite: final {', '.join(metrics)} = {values}"
    if result is not None and result.reason:
        return result.reason
    if exit_code == conventions.EXIT_OK:
        return f"NoObjective: exited 0 without reporting {', '.join(metrics)}"
    if exit_code < 0:
        detail = f"killed by signal {-exit_code}"
    elif exit_code == conventions.EXIT_STOPPED:
        detail = "stopped by SIGTERM from outside kubetune"
    else:
        detail = f"exit code {exit_code}"
    return f"Error: {detail}" + (f": {log_tail}" if log_tail else "")
