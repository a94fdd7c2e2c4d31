"""What one metrics reading of a running trial gives either runtime (pure, no I/O).

The operator (operator/reconcile.py) and `kubetune run` (local/runner.py) read each running
trial's metrics every metrics.interval and do the same two things with a reading: keep the
least and greatest evaluation of each objective (what the min and max strategies choose
among when the trial ends, trial_ending.note_extremes), and hand the engine the reading's
intermediate point, which is what pruning sees. One rule for that point, so that both
runtimes prune alike: a gauge at step 0 is no evaluation yet, and several objectives are one
point once each has been evaluated.
"""

from collections.abc import Sequence

from kubetune.metrics.types import TrialReading
from kubetune.trial_ending import note_extremes

# (step, value): one value per objective, in spec order, for a multi-objective sweep.
Point = tuple[int, float | list[float]]


def fold_reading(
    seen: dict[str, list[tuple[int, float]]],
    reading: TrialReading,
    objectives: Sequence[str],
    multi_objective: bool,
) -> Point | None:
    """Fold `reading` into the extremes kept in `seen`; the point to report to the engine
    (SweepEngine.report), or None until every objective has an evaluation."""
    note_extremes(seen, reading, objectives)
    evaluation = reading.evaluations(objectives)
    if evaluation is None:
        return None
    step, values = evaluation
    return step, values if multi_objective else values[0]
