"""Export the study to an Optuna journal file, so `optuna-dashboard optuna.journal` opens the run."""

from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from kubetune.local.layout import JOURNAL_LOCK


def export_journal(study: optuna.Study, path: Path, study_name: str) -> int:
    """Write the study's finished trials to a fresh journal; returns how many.

    Rewritten whole each time: the journal is append-only, and trials still running
    are left out so the dashboard never shows a run stuck mid-way.
    """
    for stale in (path, path.with_name(JOURNAL_LOCK)):
        stale.unlink(missing_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    target = optuna.create_study(
        storage=storage, study_name=study_name, directions=study.directions
    )
    finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    target.add_trials(finished)
    return len(finished)
