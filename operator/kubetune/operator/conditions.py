"""Status conditions: set one by type, keeping lastTransitionTime unless the status flips."""

from datetime import UTC, datetime
from typing import Literal

from kubetune.spec.status import Condition
from kubetune.text import MESSAGE_LIMIT, bounded

# Condition types a sweep reports.
READY = "Ready"  # True once the sweep finished with a result
SPEC_ACCEPTED = "SpecAccepted"  # False: invalid spec, or a refused edit
METRICS_AVAILABLE = "MetricsAvailable"  # False: Prometheus unreachable or query rejected
# False: some trial cannot start (unschedulable, image or config errors, a refused create).
TRIALS_STARTED = "TrialsStarted"
# True once the ended sweep's tidy pod was created (builders/tidy.py): never twice.
CHECKPOINTS_TIDIED = "CheckpointsTidied"

Status = Literal["True", "False", "Unknown"]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool | Status,
    reason: str,
    message: str = "",
    *,
    generation: int | None = None,
    now: str | None = None,
) -> list[Condition]:
    """A new list with the condition of `type_` replaced (or added)."""
    text: Status = ("True" if status else "False") if isinstance(status, bool) else status
    previous = next((c for c in conditions if c.type == type_), None)
    changed = previous is None or previous.status != text
    updated = Condition(
        type=type_,
        status=text,
        reason=reason,
        message=bounded(message, MESSAGE_LIMIT),
        last_transition_time=(now or now_iso())
        if changed or previous is None
        else previous.last_transition_time,
        observed_generation=generation,
    )
    return (
        [updated if c.type == type_ else c for c in conditions]
        if previous
        else [
            *conditions,
            updated,
        ]
    )


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
