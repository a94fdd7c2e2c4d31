"""Child processes of the test cluster must not outlive the test run."""

from __future__ import annotations

import contextlib
import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Run in the child (preexec_fn): SIGKILL it when the thread that started it dies, so a
    killed test run leaves no pods or Prometheus behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
