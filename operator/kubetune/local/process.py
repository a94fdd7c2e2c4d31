"""One trial subprocess: started in its own session, stopped with SIGTERM then SIGKILL."""

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

from kubetune.local.launch import TrialLaunch
from kubetune.local.layout import TRIAL_LOG
from kubetune.local.leftovers import start_time
from kubetune.local.state import TrialAttempt

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class LaunchError(Exception):
    """The trial's command could not be started (not found, not executable, ...)."""


class TrialProcess:
    """A running trial; its stdout and stderr go to <trial dir>/trial.log.

    Each trial gets its own session, so a Ctrl-C in the terminal reaches kubetune only:
    kubetune then stops the trials itself, in order, and records what they finished.
    """

    def __init__(self, process: asyncio.subprocess.Process, log_path: Path) -> None:
        self._process = process
        self.log_path = log_path
        self.started = time.monotonic()
        self.kill_at: float | None = None

    @classmethod
    async def start(cls, launch: TrialLaunch, trial_dir: Path) -> "TrialProcess":
        """Start the trial; LaunchError if its command cannot run, OSError if its folder
        or log cannot be written (the output folder's problem, not the trial's)."""
        trial_dir.mkdir(parents=True, exist_ok=True)
        log_path = trial_dir / TRIAL_LOG
        with log_path.open("ab") as log:
            try:
                process = await asyncio.create_subprocess_exec(
                    *launch.argv,
                    env=launch.env,
                    cwd=launch.cwd,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as error:
                raise LaunchError(f"{launch.argv[0]}: {error.strerror}") from None
        return cls(process, log_path)

    @property
    def pid(self) -> int:
        return self._process.pid

    def attempt(self, token: str) -> TrialAttempt:
        """What state.json keeps of this process, for a --resume after kubetune was killed."""
        return TrialAttempt(token=token, pgid=self.pid, start=start_time(self.pid))

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    @property
    def stopping(self) -> bool:
        return self.kill_at is not None

    async def wait(self) -> int:
        return await self._process.wait()

    def terminate(self, grace_seconds: float) -> None:
        """SIGTERM the trial's process group; kill_if_overdue() sends SIGKILL after the grace."""
        if self.kill_at is None:
            self.kill_at = time.monotonic() + grace_seconds
            self._signal(signal.SIGTERM)

    def kill_if_overdue(self) -> bool:
        if self.kill_at is not None and time.monotonic() >= self.kill_at:
            self._signal(signal.SIGKILL)
            return True
        return False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def _signal(self, sig: signal.Signals) -> None:
        if self._process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, sig)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it if kubetune dies without stopping it (Linux).

    A trial runs in its own session, so nothing else would stop it after a kill -9 of
    kubetune; --resume then reruns it, and an orphan must not write into the same folder.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
