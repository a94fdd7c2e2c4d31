"""Trial metrics read from the trial's log: the pod's log (operator) or its log file (local).

Both keep one LogParser per trial attempt and feed it only the bytes it has not seen, so
memory holds the latest values, never the log. A reader that starts over (an operator
restart) parses the log from its first byte again and recomputes every step identically;
the engine ignores a step at or below the last one it recorded, so nothing is counted
twice and nothing is lost.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from kubetune.metrics.log_lines import LogFormat, LogParser
from kubetune.metrics.per_trial import readings_by_trial
from kubetune.metrics.types import TrialReading, TrialTarget
from kubetune.spec import SweepSpec

log = logging.getLogger(__name__)

# Pod logs streamed at once per sweep pass: each is one API server (and kubelet) request.
MAX_CONCURRENT_READS = 8
_FILE_CHUNK = 64 * 1024

# (namespace, pod, container) -> the pod's log from its first byte, in chunks.
LogStream = Callable[[str, str, str | None], AsyncIterator[bytes]]


@dataclass(frozen=True)
class LogReading:
    """How a sweep's trial logs are read: spec.metrics.logs plus the metrics to keep."""

    format: LogFormat
    filter: str | None
    step_key: str | None
    objective: str  # its latest report's step is the reading's eval_step
    wanted: tuple[str, ...]

    def parser(self) -> LogParser:
        return LogParser(self.format, self.filter, self.step_key, wanted=self.wanted)


def log_reading(spec: SweepSpec) -> LogReading | None:
    """The one place both runtimes decide: the trial's log when spec.metrics.logs is set."""
    logs = spec.metrics.logs
    if logs is None:
        return None
    objectives = [o.metric for o in spec.objective_list]
    return LogReading(
        format=logs.format,
        filter=logs.filter,
        step_key=logs.step_key,
        objective=objectives[0],
        wanted=(*objectives, *spec.additional_metrics),
    )


class _Parsers:
    """One parser per (trial, attempt); trials no longer read are forgotten."""

    def __init__(self, reading: LogReading) -> None:
        self.reading = reading
        self._by_trial: dict[str, tuple[str, LogParser]] = {}

    def get(self, trial: str, attempt: str) -> LogParser:
        known = self._by_trial.get(trial)
        if known is None or known[0] != attempt:
            # A new attempt (a requeued trial's new pod) has a new log: start over.
            known = self._by_trial[trial] = (attempt, self.reading.parser())
        return known[1]

    def restart(self, trial: str, attempt: str) -> LogParser:
        self._by_trial.pop(trial, None)
        return self.get(trial, attempt)

    def names(self) -> list[str]:
        return list(self._by_trial)

    def keep_only(self, trials: set[str]) -> None:
        for name in [name for name in self._by_trial if name not in trials]:
            del self._by_trial[name]


class LogSource:
    """Reads each trial pod's log through the pods/log API (MetricsSource)."""

    def __init__(self, reading: LogReading, stream: LogStream) -> None:
        self.reading = reading
        self._stream = stream
        self._parsers = _Parsers(reading)
        self._gate = asyncio.Semaphore(MAX_CONCURRENT_READS)

    async def collect(
        self, namespace: str, sweep: str, trials: list[TrialTarget]
    ) -> dict[str, TrialReading]:
        """Every trial whose log has reported something; one that cannot be read is left out."""
        self._parsers.keep_only({t.name for t in trials})
        answers = await asyncio.gather(
            *(self._read(namespace, t) for t in trials), return_exceptions=True
        )
        return readings_by_trial(trials, answers, "log")

    async def _read(self, namespace: str, target: TrialTarget) -> TrialReading | None:
        attempt = target.uid or ""
        parser = self._parsers.get(target.name, attempt)
        async with self._gate:
            # The API has no byte offset: stream from the start and skip what was parsed.
            skip = parser.consumed
            seen = 0
            pod = target.pod or target.name
            async for chunk in self._stream(namespace, pod, target.container):
                fresh = chunk[max(0, skip - seen) :]
                seen += len(chunk)
                if fresh:
                    parser.feed(fresh)
        if seen < skip:
            # The log is shorter than what was read before (rotated by the kubelet): parse it
            # anew next pass rather than skip lines never seen.
            self._parsers.restart(target.name, attempt)
            return parser.reading(self.reading.objective)
        if target.ended:
            parser.finish()
        return parser.reading(self.reading.objective)

    async def aclose(self) -> None:
        return None


class LogFileSource:
    """Reads each local trial's log file from where it left off (`kubetune run`)."""

    def __init__(self, reading: LogReading) -> None:
        self.reading = reading
        self._parsers = _Parsers(reading)

    def read(
        self, trial: str, attempt: str, path: Path, start: int = 0, ended: bool = False
    ) -> TrialReading | None:
        """The trial's latest values; start is where this attempt's part of the file begins
        (a rerun appends to the same file)."""
        parser = self._parsers.get(trial, attempt)
        parser.consumed = max(parser.consumed, start)
        try:
            with open(path, "rb") as file:
                file.seek(parser.consumed)
                while chunk := file.read(_FILE_CHUNK):
                    parser.feed(chunk)
        except FileNotFoundError:
            return None
        if ended:
            parser.finish()
        return parser.reading(self.reading.objective)

    def forget(self, trial: str) -> None:
        self._parsers.keep_only(set(self._parsers.names()) - {trial})
