"""What trainer.keepCheckpoints leaves in a built-in-trainer trial's output folder once the
trial has ended for good: one rule for the trainer (a trial that ran to its end tidies
itself), `kubetune run` (a pruned or failed trial, whose process was stopped and cannot
know it will never resume) and the operator's tidy pod (the same, on the cluster).

Pure, but for `remove`, which deletes the named folders.
"""

import shutil
from pathlib import Path
from typing import Literal

# In a trial's output folder (the trainer writes them; kubetune_trainer/checkpoint.py,
# artifacts.py).
CHECKPOINT_DIR = "checkpoint"
PREVIOUS_DIR = "checkpoint.previous"
FINAL_DIR = "final"

Keep = Literal["best", "all", "none"]
# Trial states after which the trial never runs again: its checkpoints are of no more use.
FINISHED_STATES = frozenset({"Succeeded", "Pruned", "Failed"})


def doomed(keep: str, state: str) -> list[str]:
    """The folders to remove from a trial that ended in `state`: its checkpoints unless
    keepCheckpoints is all, and final/ too with none; nothing while it may still resume
    (Requeued, Running, ...)."""
    if state not in FINISHED_STATES or keep == "all":
        return []
    names = [CHECKPOINT_DIR, PREVIOUS_DIR]
    if keep == "none":
        names.append(FINAL_DIR)
    return names


def remove(trial_dir: Path, names: list[str]) -> list[str]:
    """Remove those folders of `trial_dir` (missing ones are fine); the problems, one line
    each (a folder that cannot be removed costs space, never the result)."""
    problems = []
    for name in names:
        path = trial_dir / name
        if not path.exists():
            continue
        try:
            shutil.rmtree(path)
        except OSError as error:
            problems.append(f"cannot remove {path}: {error.strerror or error}")
    return problems
