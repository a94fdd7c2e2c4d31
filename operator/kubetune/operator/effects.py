"""What a reconcile pass reads in (a metrics reading) and hands out (status, pods, events)."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kubetune.metrics import TrialReading
from kubetune.text import MESSAGE_LIMIT, bounded

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str

    def __post_init__(self) -> None:
        # Whatever a pass puts in an Event, it reaches the API bounded.
        object.__setattr__(self, "message", bounded(self.message, MESSAGE_LIMIT))


@dataclass(frozen=True)
class PodToCreate:
    number: int
    name: str
    attempt: int
    params: dict[str, Any]
    manifest: dict[str, Any]


@dataclass
class Effects:
    """What one pass wants done, in order: patch status, delete, create, post events."""

    status: dict[str, Any]
    delete: list[tuple[str, str]] = field(default_factory=list)  # (pod name, uid)
    create: list[PodToCreate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    # The sweep's prefetch pod to create (builders/prefetch.py), before any trial.
    prefetch: dict[str, Any] | None = None
    # The sweep's tidy pod to create once it ended (builders/tidy.py): best effort.
    tidy: dict[str, Any] | None = None


@dataclass
class MetricsReading:
    """The metrics source's answer: per-trial values, or why it could not be read."""

    values: Mapping[str, TrialReading] = field(default_factory=dict)
    problem: str | None = None  # set when the source was unavailable
    reason: str = "PrometheusUnreachable"
    queried: bool = True  # False: nothing to read this pass; says nothing about the source
