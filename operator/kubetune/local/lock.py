"""One run per output folder: an flock on a file in it, held for the run's lifetime.

The kernel drops an flock when its holder dies, however it dies (kill -9 included), so
a lock is never left behind. The file keeps the holder's pid for the refusal message.
"""

import contextlib
import fcntl
import os
from pathlib import Path

from kubetune.local.layout import LOCK_FILE


class FolderBusy(Exception):
    """Another live process holds the folder's lock; the message names the folder and pid."""


class FolderLock:
    def __init__(self, fd: int, path: Path) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, folder: Path) -> "FolderLock":
        """Lock folder (which must exist) or raise FolderBusy; OSError if it cannot be locked.

        O_CLOEXEC: a trial must not inherit the lock, or an orphaned trial would keep a
        killed run's folder locked against the --resume that is to end it.
        """
        path = folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            by = f" (pid {holder})" if holder else ""
            raise FolderBusy(
                f"--output: {folder} is in use by another kubetune run{by}; one run per "
                "output folder: wait for it to end or choose another --output"
            ) from None
        except OSError:
            os.close(fd)
            raise
        # The pid only makes the refusal clearer: a full disk must not stop the run here.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None


def _holder(fd: int) -> int | None:
    """The pid the holder wrote; None while it has not written it yet or if it is garbled."""
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None
