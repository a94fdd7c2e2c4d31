"""Everything a run leaves behind once it stops: tables, best config, plots, journal."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from kubetune.engine import SweepEngine
from kubetune.journal import export_journal
from kubetune.local.layout import (
    BEST_YAML,
    IMPORTANCE_PNG,
    JOURNAL_FILE,
    OBJECTIVE_PNG,
    PARALLEL_PNG,
    TRIALS_CSV,
)
from kubetune.local.outputs import write_best_yaml, write_trials_csv
from kubetune.local.plots import plot_importance, plot_objective, plot_parallel
from kubetune.spec import BestTrial, SweepSpec

log = logging.getLogger(__name__)


@dataclass
class Outputs:
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    best: BestTrial | None = None


def write_outputs(
    output: Path, sweep: str, spec: SweepSpec, engine: SweepEngine, wall: dict[int, float]
) -> Outputs:
    """Write trials.csv, best.yaml, the PNG plots and optuna.journal into output.

    Each is independent: a plot that cannot be drawn is noted, never fatal, so the
    table and best config always land.
    """
    result = Outputs()
    history = engine.history()
    write_trials_csv(output / TRIALS_CSV, sweep, spec, history, wall)
    result.files.append(TRIALS_CSV)

    best = engine.best()
    if best is None and spec.multi_objective:
        front = engine.pareto_front()
        best = front[0] if front else None
        if best is not None:
            result.notes.append(
                f"{BEST_YAML}: one of {len(front)} Pareto-optimal trials (see {TRIALS_CSV})"
            )
    result.best = best
    (output / BEST_YAML).unlink(missing_ok=True)
    if best is not None:
        write_best_yaml(output / BEST_YAML, spec, best)
        result.files.append(BEST_YAML)
    else:
        result.notes.append(f"{BEST_YAML}: not written, no trial succeeded")

    objective = spec.objective_list[0]
    plot_objective(output / OBJECTIVE_PNG, history, objective)
    result.files.append(OBJECTIVE_PNG)
    if plot_parallel(output / PARALLEL_PNG, engine.study, objective.metric):
        result.files.append(PARALLEL_PNG)
    else:
        result.notes.append(f"{PARALLEL_PNG}: not drawn, no completed trial")
    why_not = plot_importance(output / IMPORTANCE_PNG, engine.study, objective.metric)
    if why_not is None:
        result.files.append(IMPORTANCE_PNG)
    else:
        (output / IMPORTANCE_PNG).unlink(missing_ok=True)
        result.notes.append(f"{IMPORTANCE_PNG}: not drawn, {why_not}")

    export_journal(engine.study, output / JOURNAL_FILE, sweep)
    result.files.append(JOURNAL_FILE)
    return result
