"""`kubetune` on a disk that fills up, for the full-disk tests (a real full file system
needs a mount, so the writes fail the way a full disk makes them fail: with ENOSPC).

FULL_DISK_FLAG=<path>: once that file exists, os.fsync fails with ENOSPC; state.json is
fsynced before it replaces the previous copy, so its saves fail there.
FULL_DISK_PLOTS=1: saving a figure fails with ENOSPC.
"""

import errno
import os
import sys
from pathlib import Path
from typing import Any

import matplotlib.figure

from kubetune.cli import main

_real_fsync = os.fsync


def _no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fsync(fd: Any) -> None:
    flag = os.environ.get("FULL_DISK_FLAG")
    if flag and Path(flag).exists():
        raise _no_space()
    _real_fsync(fd)


def _savefig(self: matplotlib.figure.Figure, *args: Any, **kwargs: Any) -> None:
    raise _no_space()


os.fsync = _fsync
if os.environ.get("FULL_DISK_PLOTS"):
    matplotlib.figure.Figure.savefig = _savefig  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
