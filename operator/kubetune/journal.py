"""A study as an Optuna journal file, so `optuna-dashboard FILE` opens it.

One writer for both runtimes: `kubetune run` hands it its live study, `kubetune export`
the study a sweep's recorded history rebuilds (the engine's own replay), so a cluster
sweep and a local run of the same trials give the same journal.
"""

from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from kubetune.conventions import trial_name
from kubetune.engine import SweepEngine
from kubetune.spec import SweepSpec, TrialRecord

TRIAL_ATTR = "trial"


def export_journal(study: optuna.Study, path: Path, study_name: str) -> int:
    """Write the study's finished trials to a fresh journal; returns how many.

    Rewritten whole each time: the journal is append-only, and trials still running
    are left out so the dashboard never shows a run stuck mid-way. Optuna numbers the
    trials it adds from 0 without gaps, so each carries its kubetune name (the pod's,
    the status's) as the user attribute TRIAL_ATTR.
    """
    for stale in (path, path.with_name(path.name + ".lock")):
        stale.unlink(missing_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    target = optuna.create_study(
        storage=storage, study_name=study_name, directions=study.directions
    )
    finished = [t for t in study.get_trials(deepcopy=True) if t.state.is_finished()]
    for trial in finished:
        trial.set_user_attr(TRIAL_ATTR, trial_name(study_name, trial.number))
    target.add_trials(finished)
    return len(finished)


def export_history(
    spec: SweepSpec, sweep_name: str, history: Sequence[TrialRecord], path: Path
) -> int:
    """Write a recorded history (a sweep's status.history) as a journal; returns the trials.

    The study comes from the engine built on that history, as the operator builds it, so
    directions and distributions are the spec's. HistoryError / ValueError name what in
    the history cannot be restored.
    """
    engine = SweepEngine(spec, sweep_name, history=history)
    return export_journal(engine.study, path, sweep_name)
