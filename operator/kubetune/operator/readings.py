"""What the operator has read of each trial in flight, kept across passes (no I/O).

A trial's final values may come from metrics read before it ended (its last reading), and
the min and max strategies choose among the evaluations read while it ran (its extremes).
A reading taken while the metrics source was down may not be the trial's last: such a
trial is `blind`, and trial_ending treats a value missing from it as lost, not unreported.
Everything about a trial is forgotten once its ending is recorded.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kubetune.metrics import TrialReading
from kubetune.operator.effects import MetricsReading
from kubetune.trial_ending import note_extremes
from kubetune.trial_readings import Point, fold_reading

# Per metric, the least and greatest evaluation read (TrialEnding.seen).
Extremes = dict[str, list[tuple[int, float]]]


@dataclass(frozen=True)
class LastReading:
    """What the ending of a trial takes from its readings."""

    last: TrialReading | None
    seen: Mapping[str, Sequence[tuple[int, float]]]
    blind: bool  # it ran while the metrics source was down

    @property
    def last_is_final(self) -> bool:
        # Read before an outage: maybe not the trial's final value.
        return not (self.blind and self.last is not None and not self.last.done)


@dataclass
class TrialReadings:
    last_values: dict[str, TrialReading] = field(default_factory=dict)
    # Per (trial, attempt): what the min and max strategies choose among besides the
    # result (trial_ending rules).
    extremes: dict[tuple[str, int], Extremes] = field(default_factory=dict)
    # Trials that ran while the metrics source was down: their readings have gaps.
    blind: set[str] = field(default_factory=set)

    def take(self, metrics: MetricsReading, in_flight: Iterable[str]) -> None:
        """This pass's reading, of the trials in flight (by name)."""
        for name, values in metrics.values.items():
            self.last_values[name] = values
        if metrics.problem is not None:
            self.blind.update(in_flight)

    def fold(
        self,
        name: str,
        attempt: int,
        reading: TrialReading,
        objectives: Sequence[str],
        multi_objective: bool,
    ) -> Point | None:
        """A running trial's reading: its extremes kept; the point to report to the engine."""
        kept = self.extremes.setdefault((name, attempt), {})
        return fold_reading(kept, reading, objectives, multi_objective)

    def at_end(
        self, name: str, attempt: int, metrics: MetricsReading, objectives: Sequence[str]
    ) -> LastReading:
        """What an ended trial's readings say, this pass's reading included."""
        # While the source is down an older reading may not be the final one: wait for it.
        last = None if metrics.problem is not None else metrics.values.get(name)
        last = last or (None if metrics.problem is not None else self.last_values.get(name))
        seen: Mapping[str, Sequence[tuple[int, float]]] = self.extremes.get((name, attempt), {})
        if last is not None:
            copied = {metric: list(points) for metric, points in seen.items()}
            note_extremes(copied, last, objectives)
            seen = copied
        return LastReading(last, seen, name in self.blind)

    def forget(self, name: str) -> None:
        """The trial's ending is recorded: drop all that was read of it, every attempt."""
        self.last_values.pop(name, None)
        self.blind.discard(name)
        for key in [key for key in self.extremes if key[0] == name]:
            del self.extremes[key]
