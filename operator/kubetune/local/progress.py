"""The live progress view: a rich table on a terminal, plain log lines otherwise."""

import sys
import time
from types import TracebackType
from typing import Protocol, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kubetune.local.board import Board, format_params, format_value

# Rows kept on screen besides the running trials: the most recent finished ones.
RECENT_ROWS = 8
STATE_STYLES = {
    "Running": "cyan",
    "Succeeded": "green",
    "Pruned": "yellow",
    "Failed": "red",
    "Requeued": "magenta",
    "Stopping": "yellow",
}


class ProgressView(Protocol):
    def __enter__(self) -> "ProgressView": ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...

    def event(self, text: str) -> None:
        """One line worth keeping in the log: a trial started, ended, a new best."""

    def detail(self, text: str) -> None:
        """A progress line (a new evaluation): logged in plain mode, the table shows it live."""

    def update(self, board: Board) -> None:
        """The state of every trial changed (a refresh, not a log line)."""


def make_view(stream: TextIO | None = None, live: bool | None = None) -> ProgressView:
    """The rich table on a terminal; plain lines when output is piped (CI, tests)."""
    stream = stream or sys.stdout
    if live is None:
        live = stream.isatty()
    return LiveView(stream) if live else LineView(stream)


class LineView:
    """Timestamped lines, flushed at once so a CI log follows the run."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __enter__(self) -> "LineView":
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stream.flush()

    def event(self, text: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {text}", file=self.stream, flush=True)

    def detail(self, text: str) -> None:
        self.event(text)

    def update(self, board: Board) -> None:
        pass


class LiveView:
    """A table of the running and recent trials, refreshed in place, with events above it."""

    def __init__(self, stream: TextIO) -> None:
        self.console = Console(file=stream)
        self._live = Live(console=self.console, refresh_per_second=4, transient=False)

    def __enter__(self) -> "LiveView":
        self._live.__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._live.__exit__(kind, error, trace)

    def event(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}", highlight=False)

    def detail(self, text: str) -> None:
        pass

    def update(self, board: Board) -> None:
        self._live.update(render(board))


def render(board: Board) -> Group:
    counts = board.counts
    done = sum(counts.get(k, 0) for k in ("succeeded", "pruned", "failed"))
    header = Text.assemble(
        (f"{board.sweep}", "bold"),
        f"  {done}/{board.max_trials} done  ",
        (f"{counts.get('running', 0)} running  ", "cyan"),
        (f"{counts.get('succeeded', 0)} succeeded  ", "green"),
        (f"{counts.get('pruned', 0)} pruned  ", "yellow"),
        (f"{counts.get('failed', 0)} failed", "red"),
    )
    best = Text.assemble(
        f"best {board.metric} ({board.direction}): ",
        (format_value(board.best_value), "bold green"),
        f"  {board.best_trial or ''}",
    )
    table = Table(expand=False, box=None, pad_edge=False)
    for column in ("trial", "state", "step", board.metric, "time", "parameters"):
        table.add_column(column, no_wrap=True, justify="right" if column == "step" else "left")
    running = [r for r in board.rows.values() if r.state in ("Running", "Stopping")]
    finished = [r for r in board.rows.values() if r not in running]
    for row in (
        sorted(running, key=lambda r: r.number)
        + sorted(finished, key=lambda r: r.number)[-RECENT_ROWS:]
    ):
        marker = " *" if row.name == board.best_trial else ""
        table.add_row(
            row.name + marker,
            Text(row.state, style=STATE_STYLES.get(row.state, "")),
            "-" if row.step is None else str(row.step),
            format_value(row.value),
            f"{row.elapsed:.0f}s",
            format_params(row.params) + (f"  ({row.note})" if row.note else ""),
        )
    return Group(header, best, table)
