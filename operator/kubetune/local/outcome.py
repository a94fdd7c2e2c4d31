"""What a finished trial process left behind, as the facts trial_ending.judge reads (pure)."""

import signal
from pathlib import Path

from pydantic import ValidationError

from kubetune import conventions
from kubetune.local.layout import termination_log_name
from kubetune.metrics import TrialReading
from kubetune.trial_ending import StopReason, TrialEnding
from kubetune.trial_result import TrialResult


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


def exit_status(returncode: int) -> int:
    """A process's return code as a container reports it: 128+N when killed by signal N."""
    return 128 + signal.Signals(-returncode).value if returncode < 0 else returncode


def process_ending(
    returncode: int,
    result: TrialResult | None,
    stop: StopReason | None,
    last: TrialReading | None,
    timeout: str | None = None,
    log_tail: str = "",
    seen: dict[str, list[tuple[int, float]]] | None = None,
    gpu_seconds: float = 0.0,
    earlier_gpu_seconds: float = 0.0,
) -> TrialEnding:
    """The ending of a local trial: no cluster, so nothing but kubetune's stops disrupts it."""
    return TrialEnding(
        exit_code=exit_status(returncode),
        result=result,
        last=last,
        stop=stop,
        timeout=timeout,
        detail=log_tail,
        seen=seen or {},
        gpu_seconds=gpu_seconds,
        earlier_gpu_seconds=earlier_gpu_seconds,
    )
