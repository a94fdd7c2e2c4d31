"""Writing the final TrialResult: the termination message and <output dir>/result.json."""

import sys
from pathlib import Path

from kubetune import conventions
from kubetune.trial_result import TrialResult


def _warn(message: str) -> None:
    print(f"kubetune-trainer: warning: {message}", file=sys.stderr, flush=True)


def write_result(result: TrialResult, output_dir: Path, termination_log: Path) -> None:
    """Both copies; a missing or read-only termination path is a warning, not an error.

    Outside Kubernetes /dev/termination-log usually does not exist; result.json
    still carries the full result (the termination message may thin the history).
    """
    message = result.to_message()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / conventions.RESULT_FILE).write_text(
            result.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
        )
    except OSError as error:
        _warn(f"cannot write {output_dir / conventions.RESULT_FILE}: {error.strerror}")
    try:
        with termination_log.open("w") as handle:
            handle.write(message)
    except OSError as error:
        _warn(f"cannot write the termination message to {termination_log}: {error.strerror}")
