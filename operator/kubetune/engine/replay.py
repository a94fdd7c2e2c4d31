"""Recorded trial history -> an Optuna study in the same state as the live engine's."""

from collections.abc import Sequence

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler
from optuna.storages import InMemoryStorage
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from kubetune.engine.space import SearchSpace
from kubetune.engine.summary import Trial


class HistoryError(ValueError):
    """A history record the engine cannot restore; the message names the trial."""


_STATES: dict[str, TrialState] = {
    "Pending": TrialState.RUNNING,
    # Created, waiting for Kueue's admission: as launched as a pending one.
    "Queued": TrialState.RUNNING,
    "Running": TrialState.RUNNING,
    # A requeued trial keeps its place (and its lie) in the study until it runs again.
    "Requeued": TrialState.RUNNING,
    "Succeeded": TrialState.COMPLETE,
    "Pruned": TrialState.PRUNED,
    "Failed": TrialState.FAIL,
}


def new_study(
    name: str,
    directions: Sequence[StudyDirection],
    sampler: BaseSampler,
    pruner: BasePruner,
) -> tuple[Study, InMemoryStorage]:
    storage = InMemoryStorage()
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        directions=list(directions),
        sampler=sampler,
        pruner=pruner,
    )
    return study, storage


def frozen(trial: Trial, space: SearchSpace, objectives: int = 1) -> FrozenTrial:
    """The Optuna trial the live engine holds for this record."""
    state = _STATES[trial.state]
    values = trial.values if state == TrialState.COMPLETE else None
    single = objectives == 1
    if state == TrialState.PRUNED and trial.intermediate and single:
        # study.tell(PRUNED) stores the last intermediate value as the trial's value.
        values = [trial.intermediate[-1][1]]
    return create_trial(
        state=state,
        params=space.to_optuna(trial.params),
        distributions=dict(space.distributions),
        values=values,
        # The live engine gives a multi-objective study no intermediate values (report).
        intermediate_values=dict(trial.intermediate) if single else {},
    )


def replay(study: Study, trials: Sequence[Trial], space: SearchSpace, objectives: int = 1) -> None:
    """Add the recorded trials to an empty study, numbered as recorded.

    A gap in the numbers (a history edited by hand) becomes a failed placeholder so later
    numbers still line up; it is not a trial of the sweep.
    """
    expected = 0
    for trial in sorted(trials, key=lambda t: t.number):
        while expected < trial.number:
            study.add_trial(create_trial(state=TrialState.FAIL))
            expected += 1
        if trial.state == "Succeeded" and not trial.values:
            raise HistoryError(f"history: trial {trial.number} succeeded but has no value (v)")
        try:
            study.add_trial(frozen(trial, space, objectives))
        except ValueError as error:
            raise HistoryError(f"history: trial {trial.number}: {error}") from None
        expected += 1
