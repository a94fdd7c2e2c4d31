"""The final result a trial writes: its termination message and result.json.

The trainer writes it, the local launcher and the operator read it, so the final
value survives a pod that ends between two Prometheus scrapes.
"""

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Kubernetes truncates a termination message beyond 4096 bytes.
TERMINATION_MESSAGE_LIMIT = 4096

TrialOutcome = Literal["succeeded", "failed", "stopped"]


class BestValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    value: float
    step: int


class TrialResult(BaseModel):
    """What a trial reports when it ends; field names are the JSON keys."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: TrialOutcome
    reason: str | None = None
    # Final values by short metric name (eval_loss, eval_accuracy, train_loss, ...).
    metrics: dict[str, float] = Field(default_factory=dict)
    best: BestValue | None = None
    # Evaluation history by short metric name: [[step, value], ...], oldest first.
    intermediate: dict[str, list[tuple[int, float]]] = Field(default_factory=dict)
    steps: int = 0
    wall_seconds: float = Field(default=0.0, alias="wallSeconds")
    adapter_path: str | None = Field(default=None, alias="adapterPath")
    # The checkpoint step this attempt resumed from (absent: it started at step 0). The
    # intermediate history still starts at step 0: the checkpoint carried it over.
    resumed_from: int | None = Field(default=None, alias="resumedFrom")
    # The KUBETUNE_ATTEMPT of the launch that wrote it, when the launcher set one.
    attempt: str | None = None

    def to_message(self, limit: int = TERMINATION_MESSAGE_LIMIT) -> str:
        """Compact JSON that fits a termination message, thinning history if needed."""
        result = self
        while True:
            text = json.dumps(
                result.model_dump(by_alias=True, exclude_none=True), separators=(",", ":")
            )
            if len(text.encode()) <= limit or not any(result.intermediate.values()):
                return text
            # Keep the last point of every series: it is the one pruning decisions use.
            thinned = {
                k: (v[:-1][::2] + v[-1:]) if len(v) > 1 else []
                for k, v in result.intermediate.items()
            }
            result = result.model_copy(update={"intermediate": thinned})

    @classmethod
    def from_message(cls, text: str) -> "TrialResult":
        return cls.model_validate_json(text)


def resumed_note(result: TrialResult | None) -> str:
    """ " (resumed from step N)" for the ended-trial event of a resumed attempt, else ""."""
    step = result.resumed_from if result is not None else None
    if not step or step < 0:
        return ""
    return f" (resumed from step {str(step)[:12]})"  # the trial wrote it: bounded
