"""What `earlyStopping: auto` (the default) runs: asha with forecasts, or no pruning.

Measured with bench/search_peers.py (bench/results/search_peers.md, auto_pruning_probe.md
and rung_rule_probe.md):

- With one trial at a time, the default sampler learns from every finished trial, and
  pruning takes that away: on the fine-tuning table at parallelism 1, pruning with the GP
  ended at a median regret of 0.047 against 0.000 without it (10 seeds).
- With 8 at once, the sampler gets only a few rounds of finished trials in a modest budget,
  and the breadth that pruning buys wins: on the table, ASHA with the GP ended at a median
  regret of 0.042 against 0.048 without it (means 0.037 and 0.055; 40 seeds, paired
  p = 0.046).
- A first rung at 1/8 of the run keeps the smooth synthetic curves as good as without
  pruning (0.0080 against 0.0076 at parallelism 8); a rung at the first evaluation (Ray's
  grace period) ranked them by early speed and lost (0.0117).

- Below that, pruning only the startup trials (the random points before the model takes
  over; trials: startup) leaves whole every trial the model learns from, and the random
  points that stop at the first rung cost an eighth of a run. At parallelism 1 on 40 seeds
  not used to choose it (bench/results/screened_startup_probe.md): median regret on the
  table 0.036 against 0.048 unpruned (paired p = 0.19), where unpruned was shown worse
  than Ray Tune's ASHA recipe (p = 0.030) and screened is not (p = 0.27); no difference on
  the synthetic curves. Screening more startup trials (24) helped the table more and lost
  on the lr-coupled curves (p = 0.008), so the startup count stays as it was. At 2 and 3
  trials at once screening was never shown worse than not pruning (30 seeds on the table,
  60 on the curves) or than pruning every trial (the table; screened_startup_probe.md).

So auto prunes every trial from AUTO_PARALLELISM trials at once and the startup trials
below that (with an algorithm that has them), for one objective, when the step trials end
at is known (a forecast needs it). A pure function of the spec: both runtimes and a
rebuilt engine resolve it alike. budget.parallelism may be edited while a sweep runs, and
pruning may change with it (spec/identity.py: pruning is not part of the study).
"""

import math

from kubetune.spec.sweep import STARTUP_ALGORITHMS, EarlyStopping, SweepSpec

AUTO_PARALLELISM = 4
AUTO_REDUCTION_FACTOR = 4
# The first rung at this fraction of the run (rounded up to an evaluation).
AUTO_FIRST_RUNG_FRACTION = 1 / 8


def resolve(spec: SweepSpec) -> EarlyStopping:
    """The earlyStopping block the engine runs: auto made concrete, others as written.

    Fields the user set next to `name: auto` (minSteps, reductionFactor, forecast) are kept
    when auto turns ASHA on.
    """
    if spec.early_stopping.name != "auto":
        return spec.early_stopping
    return _decide(spec)[0]


def explain(written: SweepSpec) -> str:
    """What `auto` became for this sweep and why, for the SpecAccepted condition and
    `kubetune run`; "" when the sweep names its pruner itself."""
    if written.early_stopping.name != "auto":
        return ""
    chosen, why = _decide(written)
    if chosen.name == "none":
        return f"earlyStopping auto: none ({why})"
    forecast = ", forecast" if chosen.forecast else ""
    startup = ", startup trials only" if chosen.trials == "startup" else ""
    return (
        f"earlyStopping auto: asha (minSteps {chosen.min_steps}, reductionFactor "
        f"{chosen.reduction_factor}{forecast}{startup}; {why})"
    )


def _decide(spec: SweepSpec) -> tuple[EarlyStopping, str]:
    """What auto runs for ``spec``, and the reason: one place, so the status never gives a
    reason other than the one that decided."""
    early = spec.early_stopping
    if spec.multi_objective:
        return EarlyStopping(name="none"), "several objectives"
    parallelism = spec.budget.parallelism
    chosen = early.model_fields_set
    few = f"budget.parallelism {parallelism} < {AUTO_PARALLELISM}"
    if "trials" in chosen:
        trials = early.trials
    elif parallelism >= AUTO_PARALLELISM:
        trials = "all"
    elif spec.algorithm.name in STARTUP_ALGORITHMS:
        trials = "startup"
    else:
        return EarlyStopping(name="none"), few
    last = spec.last_step
    if last is None:
        return EarlyStopping(name="none"), (
            "no known last step (trainer.maxSteps or earlyStopping.maxSteps)"
        )
    every = spec.trainer.eval_every if spec.trainer is not None else 1
    first = max(every, math.ceil(last * AUTO_FIRST_RUNG_FRACTION / every) * every)
    min_steps = early.min_steps if "min_steps" in chosen else first
    if min_steps >= last:
        return EarlyStopping(name="none"), "no evaluation before the last step to prune at"
    forecast = early.forecast if "forecast" in chosen else True
    pruner = EarlyStopping(
        name="asha",
        min_steps=min_steps,
        reduction_factor=(
            early.reduction_factor if "reduction_factor" in chosen else AUTO_REDUCTION_FACTOR
        ),
        forecast=forecast,
        # Under asha, maxSteps is where forecasts aim; auto also read it as the last step.
        max_steps=early.max_steps if forecast else None,
        trials=trials,
    )
    if "trials" in chosen:
        return pruner, f"trials {trials} as written"
    if parallelism >= AUTO_PARALLELISM:
        return pruner, f"budget.parallelism {parallelism} >= {AUTO_PARALLELISM}"
    return pruner, f"{few}: the model's own trials run to the end"
