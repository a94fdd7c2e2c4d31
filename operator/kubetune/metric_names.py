"""Every Prometheus metric name kubetune emits or queries.

The trainer, the operator, the local runner and the Grafana dashboards all read
their names from here, so a rename is one edit and a test catches a dashboard
that drifts (tests check every dashboard query against these names).
"""

import re
from typing import Final

TRIAL_PREFIX: Final = "kubetune_trial_"

# Labels on every trainer series. Hyperparameters are never labels on these:
# they would multiply series; they ride on the single TRIAL_INFO series instead.
TRIAL_LABELS: Final = ("sweep", "trial", "namespace")

# Trainer series (base units: seconds, bytes, tokens).
TRAIN_LOSS: Final = "kubetune_trial_train_loss"
EVAL_LOSS: Final = "kubetune_trial_eval_loss"
EVAL_ACCURACY: Final = "kubetune_trial_eval_accuracy"
LEARNING_RATE: Final = "kubetune_trial_learning_rate"
GRAD_NORM: Final = "kubetune_trial_grad_norm"
STEP: Final = "kubetune_trial_step"
MAX_STEPS: Final = "kubetune_trial_max_steps"
TOKENS_TOTAL: Final = "kubetune_trial_tokens_total"  # counter
TOKENS_PER_SECOND: Final = "kubetune_trial_tokens_per_second"
GPU_MEMORY_BYTES: Final = "kubetune_trial_gpu_memory_bytes"
TRIAL_INFO: Final = "kubetune_trial_info"  # value 1, hyperparameters as labels
TRIAL_DONE: Final = "kubetune_trial_done"  # 1 once the final values are set
# Step at which the current eval_* values were measured; pruning reads
# (value, step) pairs and must not pair a fresh step with a stale eval value.
EVAL_STEP: Final = "kubetune_trial_eval_step"

# The objective a sweep may name for a trial's cost: kubetune computes it (GPUs x running
# time of every attempt), the trial does not report it.
GPU_HOURS_OBJECTIVE: Final = "gpu_hours"

# Operator series.
SWEEPS: Final = "kubetune_sweeps"  # gauge, label phase
TRIALS: Final = "kubetune_trials"  # gauge, labels namespace, sweep, state
SWEEP_BEST_VALUE: Final = "kubetune_sweep_best_value"  # gauge, labels namespace, sweep
SWEEP_GPU_HOURS: Final = "kubetune_sweep_gpu_hours"  # gauge, labels namespace, sweep
TRIAL_TURNOVER_SECONDS: Final = "kubetune_trial_turnover_seconds"  # histogram
RECONCILE_SECONDS: Final = "kubetune_reconcile_seconds"  # histogram
RECONCILE_ERRORS: Final = "kubetune_reconcile_errors_total"  # counter, label reason
SUGGESTION_SECONDS: Final = "kubetune_suggestion_seconds"  # histogram


# Characters a Prometheus metric name may not hold; a user's metric name may (spec
# METRIC_NAME_PATTERN allows -, . and /, as in Validation-accuracy, val/loss, eval.loss).
_NOT_IN_SERIES = re.compile(r"[^a-zA-Z0-9_]")


def trial_metric(name: str) -> str:
    """The series of a metric the trial reports: the one rule from a user's name to Prometheus.

    kubetune_trial_ + the name with every character outside [a-zA-Z0-9_] replaced by _:
    val/loss -> kubetune_trial_val_loss, Validation-accuracy ->
    kubetune_trial_Validation_accuracy. A name that is a series already keeps its prefix.
    Two names that map to one series (val/loss and val_loss) cannot both be read, so the
    spec refuses a sweep whose objectives and additional metrics collide (series_collisions).
    The trial's result keeps the user's name as the key of its metrics.
    """
    series = name if name.startswith(TRIAL_PREFIX) else TRIAL_PREFIX + name
    return _NOT_IN_SERIES.sub("_", series)


def reading_key(name: str) -> str:
    """Key of a metric in a reading of the trial's series (its series without the prefix)."""
    return short_name(trial_metric(name))


def series_collisions(named: list[tuple[str, str]]) -> list[str]:
    """Problems for (field, metric name) pairs whose names map to one series, naming both."""
    seen: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for field, name in named:
        series = trial_metric(name)
        if series in seen:
            other_field, other = seen[series]
            problems.append(
                f"{field}: {name!r} maps to the series {series}, as {other_field} {other!r} "
                "does (every character outside [a-zA-Z0-9_] becomes _); rename one"
            )
        else:
            seen[series] = (field, name)
    return problems


def short_name(series: str) -> str:
    """eval_loss for kubetune_trial_eval_loss: the key of a trial result's metrics."""
    return series.removeprefix(TRIAL_PREFIX)


# What the built-in trainer reports for every trial, per trainer mode: each value is both a
# series here and a key (short name) of the trial's result metrics, so each may be a sweep's
# objective. The trainer sets these gauges only through TrainerMetrics.report, keyed by these
# names, and `kubetune validate` refuses a trainer sweep whose objective names another.
TRAINER_OBJECTIVES: Final[dict[str, tuple[str, ...]]] = {
    "train": (EVAL_LOSS, EVAL_ACCURACY, TRAIN_LOSS, LEARNING_RATE, GRAD_NORM, TOKENS_PER_SECOND),
    "generate": (EVAL_ACCURACY,),  # decoding only: no loss, no training step
}


def trainer_objectives(mode: str) -> tuple[str, ...]:
    """Short names of the values the built-in trainer reports in `mode` (train, generate)."""
    return tuple(short_name(series) for series in TRAINER_OBJECTIVES[mode])


TRAINER_GAUGES: Final = (
    TRAIN_LOSS,
    EVAL_LOSS,
    EVAL_ACCURACY,
    LEARNING_RATE,
    GRAD_NORM,
    STEP,
    MAX_STEPS,
    TOKENS_PER_SECOND,
    GPU_MEMORY_BYTES,
    TRIAL_DONE,
    EVAL_STEP,
)
