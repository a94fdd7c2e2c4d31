"""Metrics from a trial's log: Katib-style `name=value` text, or JSON lines. Pure: no I/O.

A LogParser is fed the log in chunks as it grows and keeps only what a reading needs: the
latest value and step of each metric, the current step, and how many bytes it has eaten.
The same bytes always give the same (step, value) reports, so a reader that starts over
from the beginning of the log (an operator restart) reports nothing new: the engine
ignores a step at or below the last one it recorded.

Steps. A report's step is the line's step key (stepKey, else the first of step,
global_step, epoch); a step key also stays the current step for the lines after it
(`epoch=3` on a line of its own, then `loss=0.2`). Before any step key, a metric's step is
its position: its 1st report is step 1, the 2nd step 2, ... When the first step key the
log shows is 0 (a zero-based epoch counter), every keyed step is counted one higher:
kubetune's step 0 means "no evaluation yet" (TrialReading.evaluation).

Hostile logs: a line over MAX_LINE_BYTES is skipped whole, values that are not finite
decimal numbers are ignored, and at most MAX_METRIC_NAMES distinct names are kept (only
the wanted ones when the caller names them).
"""

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import re2

from kubetune import metric_names
from kubetune.metrics.types import EVAL_STEP, STEP, TrialReading

LogFormat = Literal["text", "json"]

# Katib's metrics collector default filter (kubeflow/katib,
# pkg/metricscollector/v1beta1/common/const.go), character for character. Go's regexp is
# RE2, so filters run on RE2 here too: the same syntax as Katib, and linear time whatever
# pattern a tenant writes (no catastrophic backtracking in the operator).
KATIB_DEFAULT_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
DEFAULT_STEP_KEYS = ("step", "global_step", "epoch")
MAX_LINE_BYTES = 64 * 1024
MAX_METRIC_NAMES = 64
MAX_FILTER_LENGTH = 1024
# A value as Go's strconv.ParseFloat reads Katib's matches, minus inf/nan/hex: decimal only.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class FilterError(ValueError):
    """A metrics.logs.filter that cannot be used; the message says why."""


def compile_filter(pattern: str | None) -> Any:
    """The RE2 program of a text filter (Katib's default for None).

    It must compile as RE2 and have at least two groups: the metric's name, then its value.
    """
    text = KATIB_DEFAULT_FILTER if pattern is None else pattern
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"at most {MAX_FILTER_LENGTH} characters")
    options = re2.Options()
    options.log_errors = False
    try:
        program = re2.compile(text, options)
    except re2.error as error:
        why = error.args[0] if error.args else "invalid"
        why = why.decode(errors="replace") if isinstance(why, bytes) else str(why)
        raise FilterError(f"not an RE2 regular expression ({why[:200]})") from None
    if program.groups < 2:
        raise FilterError("needs two groups: the metric's name, then its value")
    return program


def finite_number(text: str) -> float | None:
    """A decimal number that is finite, or None (empty, inf, nan, 1e999, words)."""
    text = text.strip()
    if not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


@dataclass
class _Metric:
    value: float
    step: int
    reports: int


@dataclass
class LogParser:
    """One trial's log read so far; feed() it chunks in order, reading() the latest values."""

    format: LogFormat = "text"
    filter: str | None = None
    step_key: str | None = None
    # Metric names (as the spec writes them) to keep; None keeps the first MAX_METRIC_NAMES.
    wanted: Collection[str] | None = None
    consumed: int = 0  # bytes fed so far
    lines: int = 0  # complete lines read so far (skipped ones included)
    metrics: dict[str, _Metric] = field(default_factory=dict)
    current_step: int | None = None
    max_step: int = 0
    _offset: int | None = None  # 1 for a zero-based step key, once the first one is seen
    _partial: bytearray = field(default_factory=bytearray)
    _skipping: bool = False  # inside a line already over MAX_LINE_BYTES

    def __post_init__(self) -> None:
        self._program: Any = compile_filter(self.filter) if self.format == "text" else None
        self._step_keys = (self.step_key,) if self.step_key else DEFAULT_STEP_KEYS
        self._wanted = (
            None if self.wanted is None else {metric_names.reading_key(m) for m in self.wanted}
        )

    def feed(self, chunk: bytes) -> None:
        """The next bytes of the log; a line is read once its newline arrives."""
        self.consumed += len(chunk)
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._hold(chunk[start:])
                return
            self._hold(chunk[start:end])
            self._end_line()
            start = end + 1

    def finish(self) -> None:
        """The log is complete (the container ended): read its last line even without a newline."""
        if self._partial or self._skipping:
            self._end_line()

    def _hold(self, piece: bytes) -> None:
        if self._skipping:
            return
        if len(self._partial) + len(piece) > MAX_LINE_BYTES:
            self._partial.clear()
            self._skipping = True
            return
        self._partial += piece

    def _end_line(self) -> None:
        self.lines += 1
        raw, skipped = bytes(self._partial), self._skipping
        self._partial.clear()
        self._skipping = False
        if not skipped:
            self.read_line(raw.decode("utf-8", errors="replace").rstrip("\r"))

    def read_line(self, line: str) -> None:
        """One complete line of the log."""
        pairs = self._json_pairs(line) if self.format == "json" else self._text_pairs(line)
        if not pairs:
            return
        step = None
        for key in self._step_keys:
            found = next((v for k, v in pairs if k == key), None)
            if found is not None and found >= 0:
                step = self._keyed_step(int(found))
                break
        if step is not None:
            self.current_step = step
        for name, value in pairs:
            if name in self._step_keys:
                continue
            self._record(name, value, step if step is not None else self.current_step)

    def _keyed_step(self, raw: int) -> int:
        if self._offset is None:
            self._offset = 1 if raw == 0 else 0
        return raw + self._offset

    def _record(self, name: str, value: float, step: int | None) -> None:
        key = metric_names.reading_key(name)
        known = self.metrics.get(key)
        if known is None:
            if self._wanted is not None and key not in self._wanted:
                return
            if len(self.metrics) >= MAX_METRIC_NAMES:
                return
            known = self.metrics[key] = _Metric(value, 0, 0)
        known.reports += 1
        known.value = value
        known.step = step if step is not None else known.reports
        self.max_step = max(self.max_step, known.step)

    def _text_pairs(self, line: str) -> list[tuple[str, float]]:
        pairs = []
        for match in self._program.finditer(line):
            name, raw = match.group(1), match.group(2)
            value = finite_number(raw or "")
            if name and value is not None:
                pairs.append((name.strip(), value))
        return pairs

    @staticmethod
    def _json_pairs(line: str) -> list[tuple[str, float]]:
        line = line.strip()
        if not line.startswith("{"):
            return []
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):
            return []
        if not isinstance(data, dict):
            return []
        pairs = []
        for name, value in data.items():
            # bool is an int in Python; true is no metric value.
            if isinstance(value, int | float) and not isinstance(value, bool):
                try:
                    number = float(value)
                except OverflowError:  # an integer beyond any float
                    continue
                if math.isfinite(number):
                    pairs.append((str(name), number))
        return pairs

    def reading(self, objective: str) -> TrialReading | None:
        """The latest values, at the step of the objective's latest report; None before any."""
        if not self.metrics:
            return None
        values = {key: metric.value for key, metric in self.metrics.items()}
        values[STEP] = float(self.max_step)
        measured = self.metrics.get(metric_names.reading_key(objective))
        if measured is not None:
            values[EVAL_STEP] = float(measured.step)
        return TrialReading(values=values)
