"""The Kubernetes Events a pass posts about what trials and the sweep became (pure).

The text of each is decided here from the engine's records; when to post one (only on a
change: a new best, the first pass that sees the sweep finished) is the reconciler's call.
"""

from collections.abc import Sequence

from kubetune.engine import Completion
from kubetune.operator.effects import Event, EventType
from kubetune.spec.status import BestTrial, TrialRecord
from kubetune.spec.sweep import Objective


def trial_event(
    name: str, record: TrialRecord, objectives: Sequence[Objective], note: str = ""
) -> Event | None:
    """The Event for trial `name` that just ended or was requeued, by what it became."""
    if record.state == "Succeeded" and record.values is not None:
        pairs = zip(objectives, record.values, strict=True)
        text = ", ".join(f"{o.metric}={v:g}" for o, v in pairs)
        return Event("Normal", "TrialSucceeded", f"{name}: {text}{note}")
    if record.state == "Requeued":
        return Event("Normal", "TrialRequeued", f"{name}: {record.reason}; rerunning")
    if record.state == "Failed":
        return Event("Warning", "TrialFailed", f"{name}: {record.reason or ''}")
    return None


def new_best_event(best: BestTrial) -> Event:
    value = best.value if best.value is not None else best.values
    return Event("Normal", "NewBest", f"{best.trial}: {value} with {best.parameters}")


def finished_event(completion: Completion) -> Event:
    kind: EventType = "Normal" if completion.succeeded else "Warning"
    return Event(kind, "SweepFinished", f"{completion.reason}: {completion.message}")
