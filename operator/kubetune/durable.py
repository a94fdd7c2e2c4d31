"""Making a rename durable: shared by kubetune run's state file and the trainer's checkpoints."""

import os
from pathlib import Path


def sync_folder(folder: Path) -> None:
    """fsync a folder, so a rename inside it survives a crash; best effort, as some file
    systems cannot sync a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
