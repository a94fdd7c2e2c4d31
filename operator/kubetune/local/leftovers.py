"""Ending a trial's processes that outlived the run that launched them (Linux /proc).

A trial runs in its own process group. When kubetune is killed with SIGKILL, the kernel
SIGTERMs only the trial's first process (PR_SET_PDEATHSIG); anything it started (a shell
wrapper's python, data loader workers) runs on. --resume ends such a group before the
trial runs again, and only when the group is really that trial's: a process in it carries
the attempt's KUBETUNE_ATTEMPT, or its first process has the recorded start time. A
process group id is not reused while any process is in the group, so that check holds
for the whole group.
"""

import contextlib
import os
import signal
import time
from pathlib import Path

from kubetune import conventions
from kubetune.local.state import TrialAttempt

_PROC = Path("/proc")
# After SIGKILL the kernel ends the processes at once; this is only a bound on the wait.
_KILL_WAIT_SECONDS = 5.0
_POLL_SECONDS = 0.05


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot; None if gone or no /proc."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def end_group(attempt: TrialAttempt, grace_seconds: float) -> bool:
    """SIGTERM the attempt's leftover processes, SIGKILL those still there after the grace.

    False (nothing signalled) when none of its processes is left, or the group is not ours.
    """
    if not _ours(attempt):
        return False
    if _signal(attempt.pgid, signal.SIGTERM) and not _wait_gone(attempt.pgid, grace_seconds):
        _signal(attempt.pgid, signal.SIGKILL)
        _wait_gone(attempt.pgid, _KILL_WAIT_SECONDS)
    return True


def _ours(attempt: TrialAttempt) -> bool:
    marker = f"{conventions.ENV_ATTEMPT}={attempt.token}".encode()
    for pid in _members(attempt.pgid):
        if pid == attempt.pgid and attempt.start is not None and start_time(pid) == attempt.start:
            return True
        with contextlib.suppress(OSError):
            if marker in (_PROC / str(pid) / "environ").read_bytes().split(b"\0"):
                return True
    return False


def _members(pgid: int) -> list[int]:
    """Live (not zombie) processes in the process group."""
    found: list[int] = []
    if not _PROC.is_dir():
        return found
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def _stat(pid: int) -> list[str] | None:
    """Fields 3 and on of /proc/<pid>/stat (state, ppid, pgrp, ...): after the command
    name, which may hold spaces and parentheses itself."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _signal(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pgid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)
    return True
