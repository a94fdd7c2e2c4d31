"""PNG figures of a run: objective per trial, parallel coordinates, parameter importance."""

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines or remote shells

import matplotlib.pyplot as plt
import optuna
from optuna.visualization import matplotlib as optuna_plots

from kubetune.spec import Objective, TrialRecord

# Below this many completed trials an importance estimate is noise, so none is drawn.
MIN_TRIALS_FOR_IMPORTANCE = 4


def plot_objective(path: Path, history: list[TrialRecord], objective: Objective) -> None:
    """Each trial's value by trial number, pruned trials at their last reported value,
    and the best-so-far line over completed trials."""
    better: Callable[[float, float], bool] = (
        (lambda a, b: a < b) if objective.direction == "minimize" else (lambda a, b: a > b)
    )
    done = sorted((r.number, r.values[0]) for r in history if r.state == "Succeeded" and r.values)
    pruned = sorted(
        (r.number, r.intermediate[-1][1]) for r in history if r.state == "Pruned" and r.intermediate
    )
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    if done:
        ax.scatter(*zip(*done, strict=True), label="completed", color="tab:blue", zorder=3)
        best_x, best_y, best = [], [], math.nan
        for number, value in done:
            if math.isnan(best) or better(value, best):
                best = value
            best_x.append(number)
            best_y.append(best)
        ax.step(best_x, best_y, where="post", color="tab:green", label="best so far")
    if pruned:
        ax.scatter(
            *zip(*pruned, strict=True),
            label="pruned (last value)",
            facecolors="none",
            edgecolors="tab:red",
            zorder=3,
        )
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{objective.metric} ({objective.direction})")
    ax.set_title("Objective per trial")
    ax.grid(alpha=0.3)
    if done or pruned:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no completed trials", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_parallel(path: Path, study: optuna.Study, metric: str) -> bool:
    """Parallel coordinates of the completed trials; False when there is nothing to draw."""
    if not _completed(study):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        ax = optuna_plots.plot_parallel_coordinate(study, target=_first_value, target_name=metric)
    _save(ax, path)
    return True


def plot_importance(path: Path, study: optuna.Study, metric: str) -> str | None:
    """Parameter importance (Optuna's default evaluator); None when drawn, else why not."""
    count = len(_completed(study))
    if count < MIN_TRIALS_FOR_IMPORTANCE:
        return f"needs {MIN_TRIALS_FOR_IMPORTANCE} completed trials, have {count}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ax = optuna_plots.plot_param_importances(study, target=_first_value, target_name=metric)
    except (RuntimeError, ValueError, ZeroDivisionError) as error:
        # e.g. every completed trial has the same value: nothing to attribute.
        return f"not computable: {error}"
    _save(ax, path)
    return None


def _completed(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _first_value(trial: optuna.trial.FrozenTrial) -> float:
    return float(trial.values[0])


def _save(ax: object, path: Path) -> None:
    figure = getattr(ax, "figure", None)
    if figure is None and hasattr(ax, "flat"):  # an array of axes
        figure = next(iter(ax.flat)).figure
    assert figure is not None
    figure.set_size_inches(8, 4.5)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
