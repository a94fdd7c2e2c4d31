"""keepCheckpoints for a trial that ended for good: one rule for trainer, runner and operator."""

from pathlib import Path

import pytest

from kubetune import trial_folders
from kubetune.trial_folders import CHECKPOINT_DIR, FINAL_DIR, PREVIOUS_DIR, doomed, remove


@pytest.mark.parametrize("state", ["Succeeded", "Pruned", "Failed"])
def test_a_finished_trial_keeps_what_keep_checkpoints_says(state: str) -> None:
    assert doomed("all", state) == []
    assert doomed("best", state) == [CHECKPOINT_DIR, PREVIOUS_DIR]
    assert doomed("none", state) == [CHECKPOINT_DIR, PREVIOUS_DIR, FINAL_DIR]


@pytest.mark.parametrize("state", ["Requeued", "Running", "Pending", "Queued"])
def test_a_trial_that_may_resume_keeps_everything(state: str) -> None:
    assert doomed("none", state) == []


def test_remove_takes_only_the_named_folders(tmp_path: Path) -> None:
    for name in (CHECKPOINT_DIR, FINAL_DIR, "mine"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    assert remove(tmp_path, doomed("best", "Pruned")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [FINAL_DIR, "mine"]


def test_the_trainer_writes_the_folders_the_rule_names() -> None:
    from kubetune_trainer import artifacts, checkpoint

    assert (checkpoint.CHECKPOINT_DIR, checkpoint.PREVIOUS_DIR, artifacts.FINAL_DIR) == (
        trial_folders.CHECKPOINT_DIR,
        trial_folders.PREVIOUS_DIR,
        trial_folders.FINAL_DIR,
    )
