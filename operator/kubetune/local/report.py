"""Everything a run leaves behind once it stops: tables, best config, plots, journal."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from kubetune.engine import SweepEngine
from kubetune.journal import export_journal
from kubetune.local.layout import (
    BEST_DIR,
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
        linked = link_best(output, best)
        write_best_yaml(output / BEST_YAML, spec, best, BEST_DIR if linked else None)
        result.files.append(BEST_YAML)
        if linked:
            result.files.append(BEST_DIR)
        elif best.artifacts is not None:
            result.notes.append(f"{BEST_DIR}: not linked, {best.artifacts} is not a folder")
    else:
        unlink_best(output)
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


def unlink_best(output: Path) -> None:
    """Remove the best/ link of an earlier report (never a folder: ours is always a link)."""
    path = output / BEST_DIR
    if path.is_symlink():
        path.unlink()


def link_best(output: Path, best: BestTrial) -> bool:
    """best/ -> the best trial's artifacts folder; False when it reported none that exists.

    A link, not a copy: a full fine-tune's model may be gigabytes. Relative when the folder
    is inside the output folder (the trainer's trials/<trial>/final), so moving the output
    folder keeps it working; a relative reported path is taken from the run's working folder.
    """
    unlink_best(output)
    if best.artifacts is None:
        return False
    target = Path(best.artifacts).absolute()
    if not target.is_dir():
        return False
    link = output / BEST_DIR
    if link.exists():  # a file or folder of the user's own under our name: leave it be
        return False
    try:
        pointed: Path = target.relative_to(output.absolute())
    except ValueError:
        pointed = target
    link.symlink_to(pointed, target_is_directory=True)
    return True
