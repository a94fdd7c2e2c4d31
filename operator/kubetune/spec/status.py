"""The status a sweep reports: phase, conditions, counts, best trial, history."""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from kubetune.artifacts import MAX_ARTIFACTS_PATH
from kubetune.spec import archive
from kubetune.spec.archive import ArchiveChunk

Phase = Literal["Pending", "Running", "Succeeded", "Failed", "Suspended", "Invalid"]
TrialState = Literal["Pending", "Queued", "Running", "Succeeded", "Pruned", "Failed", "Requeued"]
ParamValue = bool | int | float | str


class StatusModel(BaseModel):
    # Status is written by kubetune only; tolerate fields a newer version added.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(StatusModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class TrialCounts(StatusModel):
    total: int = 0
    pending: int = 0
    queued: int = Field(
        default=0, description="Trials created but not admitted yet by Kueue (spec.queueName)."
    )
    running: int = 0
    succeeded: int = 0
    pruned: int = 0
    failed: int = 0


class BestTrial(StatusModel):
    trial: str
    number: int
    value: float | None = None
    values: list[float] | None = None
    step: int | None = None
    parameters: dict[str, ParamValue] = Field(default_factory=dict)
    metrics: dict[str, float] | None = Field(
        default=None, description="spec.additionalMetrics values of this trial."
    )
    artifacts: str | None = Field(
        default=None,
        max_length=MAX_ARTIFACTS_PATH,
        description="Where this trial's trained artifacts are, as the trial reported them "
        "(the trainer: <outputDir>/<trial>/final, as mounted in its pod).",
    )


class TrialRecord(StatusModel):
    """One trial, kept compact: the newest in status.history, older ones in status.archive.

    The stored keys are short on purpose (this list is the engine's memory across operator
    restarts); code reads the long field names, and the short keys are only their aliases.
    """

    number: int = Field(alias="n", description="Trial number.")
    state: TrialState = Field(alias="s", description="State.")
    params: dict[str, ParamValue] = Field(
        default_factory=dict, alias="p", description="Parameters."
    )
    values: list[float] | None = Field(
        default=None, alias="v", description="Final objective value(s)."
    )
    step: int | None = Field(default=None, alias="st", description="Step of the final value.")
    intermediate: list[tuple[int, float]] | None = Field(
        default=None,
        alias="iv",
        description="Intermediate values [[step, value], ...] for pruning.",
    )
    others: list[list[float]] | None = Field(
        default=None,
        alias="io",
        description=(
            "Multi-objective sweeps: the other objectives' values at each entry of iv, "
            "[[value of objective 2, ...], ...], for pruning."
        ),
    )
    reason: str | None = Field(
        default=None, alias="r", description="Reason, for failed and requeued trials."
    )
    requeues: int | None = Field(
        default=None, alias="rq", description="Times requeued, for any reason: attempt - 1."
    )
    disruptions: int | None = Field(
        default=None,
        alias="dq",
        description="Requeues the cluster caused (eviction, preemption, node loss).",
    )
    metrics: dict[str, float] | None = Field(
        default=None,
        alias="am",
        description="spec.additionalMetrics values (finite ones, rounded like values).",
    )
    gpu_seconds: int | None = Field(
        default=None,
        alias="gs",
        description="GPU-seconds of its ended attempts: GPUs requested x running time, to 1 s.",
    )
    artifacts: str | None = Field(
        default=None,
        alias="a",
        max_length=MAX_ARTIFACTS_PATH,
        description="Where a succeeded trial's trained artifacts are, as it reported them.",
    )

    @property
    def attempt(self) -> int:
        """Which run of this trial the current (or last) pod or process is: 1 + requeues."""
        return (self.requeues or 0) + 1


class SweepStatus(StatusModel):
    phase: Phase = "Pending"
    observed_generation: int | None = None
    message: str = ""
    objective: str | None = Field(default=None, description="Objective metric name(s).")
    trials: TrialCounts = Field(default_factory=TrialCounts)
    best: BestTrial | None = None
    pareto_front: list[BestTrial] | None = None
    gpu_hours: float | None = Field(
        default=None,
        description="GPU-hours spent by the trials' ended attempts (running ones not yet).",
    )
    conditions: list[Condition] = Field(default_factory=list)
    history: list[TrialRecord] = Field(
        default_factory=list,
        description="Records of the newest trials and of any still in flight; older finished "
        "trials are in archive.",
    )
    archive: list[ArchiveChunk] = Field(
        default_factory=list,
        description=f"Records of finished trials in sealed chunks of {archive.CHUNK}: the "
        "history records as JSON, xz-compressed, base64-encoded (lossless, so the engine "
        "rebuilds exactly; keeps the status under 1 MiB at 10,000 trials). Read one with "
        "base64 -d | xz -d.",
    )
    start_time: str | None = None
    completion_time: str | None = None
    # The spec fields that may not change while a sweep runs, as first seen.
    search_space_hash: str | None = None

    def records(self) -> list[TrialRecord]:
        """Every trial record: the archived ones, then the plain history.

        Raises ArchiveError (a ValueError) naming a chunk that does not decode.
        """
        sealed = [
            TrialRecord.model_validate(stored)
            for chunk in self.archive
            for stored in archive.unseal(chunk)
        ]
        return sealed + list(self.history)

    def keep_history(self, records: Sequence[TrialRecord]) -> None:
        """Store these records (all of the sweep's): seal what can be sealed, keep the rest plain.

        Chunks already sealed are kept as they are: a finished record never changes.
        """
        chunks = {chunk.first // archive.CHUNK: chunk for chunk in self.archive}
        open_records = [r for r in records if r.number // archive.CHUNK not in chunks]
        stored = [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in open_records]
        for k, members in archive.sealable(stored).items():
            chunks[k] = archive.seal(members, first=k * archive.CHUNK)
        self.archive = [chunks[k] for k in sorted(chunks)]
        self.history = [r for r in open_records if r.number // archive.CHUNK not in chunks]

    def to_patch(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> "SweepStatus":
        """The status a sweep object carries, kopf's bookkeeping left out.

        Raises pydantic's ValidationError (a ValueError) when it does not parse.
        """
        raw = body.get("status") or {}
        return cls.model_validate({k: v for k, v in dict(raw).items() if k != "kopf"})
