"""Writing the final TrialResult: the termination message and <output dir>/result.json.

Both carry the secret-sourced env values redacted (kubetune_trainer.redaction).
"""

from pathlib import Path

from kubetune import conventions
from kubetune.trial_result import TrialResult
from kubetune_trainer import redaction
from kubetune_trainer.log import log


def write_result(result: TrialResult, output_dir: Path, termination_log: Path) -> None:
    """Both copies; a missing or read-only termination path is a warning, not an error.

    Outside Kubernetes /dev/termination-log usually does not exist; result.json
    still carries the full result (the termination message may thin the history).
    """
    result = redaction.active().result(result)
    message = result.to_message()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / conventions.RESULT_FILE).write_text(
            result.model_dump_json(by_alias=True, exclude_none=True, indent=2) + "\n"
        )
    except OSError as error:
        log.warning(f"cannot write {output_dir / conventions.RESULT_FILE}: {error.strerror}")
    try:
        with termination_log.open("w") as handle:
            handle.write(message)
    except OSError as error:
        log.warning(f"cannot write the termination message to {termination_log}: {error.strerror}")
