"""What a finished trial process left behind, as the facts trial_ending.judge reads (pure)."""

import signal
from pathlib import Path

from pydantic import ValidationError

from kubetune import conventions
from kubetune.local.launch import TERMINATION_LOG
from kubetune.metrics import TrialReading
from kubetune.trial_ending import StopReason, TrialEnding
from kubetune.trial_result import TrialResult


def read_result(trial_dir: Path) -> TrialResult | None:
    """The trial's final result: the termination log, else result.json; None if neither parses."""
    for name in (TERMINATION_LOG, conventions.RESULT_FILE):
        path = trial_dir / name
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        if not text:
            continue
        try:
            return TrialResult.from_message(text)
        except ValidationError:
            continue
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
) -> TrialEnding:
    """The ending of a local trial: no cluster, so nothing but kubetune's stops disrupts it."""
    return TrialEnding(
        exit_code=exit_status(returncode),
        result=result,
        last=last,
        stop=stop,
        timeout=timeout,
        detail=log_tail,
    )
