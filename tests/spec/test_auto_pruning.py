"""earlyStopping: auto, the default: ASHA with forecasts on every trial from 4 trials at once,
on the startup trials alone below that, else none."""

from typing import Any

import pytest
from pydantic import ValidationError

from kubetune.spec import EarlyStopping, SweepSpec, auto_pruning, effective_spec


def early(doc: dict[str, Any]) -> EarlyStopping:
    return effective_spec(SweepSpec.model_validate(doc)).early_stopping


def trainer_sweep(parallelism: int, **extra: Any) -> dict[str, Any]:
    trainer = extra.pop("trainer", {"maxSteps": 40, "evalEvery": 5})
    return {
        "trainer": trainer,
        "budget": {"parallelism": parallelism, "maxTrials": 30},
        **extra,
    }


def test_auto_is_the_default_and_prunes_every_trial_from_four_at_once() -> None:
    assert SweepSpec.model_validate({"trainer": {}}).early_stopping.name == "auto"
    chosen = early(trainer_sweep(4))
    # The first rung at 1/8 of the run (40 steps: step 5, the first evaluation).
    assert (chosen.name, chosen.min_steps, chosen.reduction_factor, chosen.forecast) == (
        "asha",
        5,
        4,
        True,
    )
    assert chosen.trials == "all"


@pytest.mark.parametrize("parallelism", [1, 3])
def test_below_four_at_once_auto_prunes_the_startup_trials_alone(parallelism: int) -> None:
    chosen = early(trainer_sweep(parallelism))
    assert (chosen.name, chosen.min_steps, chosen.forecast, chosen.trials) == (
        "asha",
        5,
        True,
        "startup",
    )
    # An algorithm without startup trials has nothing to screen: no pruning, as before.
    for algorithm in ("random", "grid", "qmc"):
        sweep = trainer_sweep(parallelism, algorithm={"name": algorithm})
        if algorithm == "grid":
            sweep["parameters"] = [{"name": "learning_rate", "type": "categorical", "values": [1]}]
        assert early(sweep).name == "none", algorithm


def test_the_first_rung_is_an_evaluation_at_or_after_an_eighth_of_the_run() -> None:
    assert early(trainer_sweep(8, trainer={"maxSteps": 1000, "evalEvery": 25})).min_steps == 125
    assert early(trainer_sweep(8, trainer={"maxSteps": 1000, "evalEvery": 50})).min_steps == 150
    # The trainer's defaults: 200 steps, an evaluation every 50.
    assert early(trainer_sweep(8, trainer={})).min_steps == 50
    # No evaluation before the last step: nothing to prune at.
    assert early(trainer_sweep(8, trainer={"maxSteps": 40, "evalEvery": 40})).name == "none"


def test_auto_needs_the_last_step_and_one_objective() -> None:
    template = {"spec": {"containers": [{"name": "trial", "image": "x"}]}}
    params = [{"name": "lr", "type": "float", "min": 0.001, "max": 0.1}]
    custom = {"template": template, "parameters": params, "budget": {"parallelism": 8}}
    assert early(custom).name == "none"  # template trials: the last step is unknown
    told = early(custom | {"earlyStopping": {"maxSteps": 800}})
    assert (told.name, told.min_steps, told.max_steps) == ("asha", 100, 800)
    # Without forecasts, maxSteps only placed the rungs: asha takes it with forecast alone.
    plain = early(custom | {"earlyStopping": {"maxSteps": 800, "forecast": False}})
    assert (plain.name, plain.min_steps, plain.max_steps) == ("asha", 100, None)
    two = trainer_sweep(
        8,
        objectives=[
            {"metric": "eval_loss", "direction": "minimize"},
            {"metric": "gpu_hours", "direction": "minimize"},
        ],
    )
    assert early(two).name == "none"


def test_fields_written_next_to_auto_are_kept() -> None:
    chosen = early(trainer_sweep(8, earlyStopping={"minSteps": 10, "forecast": False}))
    assert (chosen.name, chosen.min_steps, chosen.reduction_factor, chosen.forecast) == (
        "asha",
        10,
        4,
        False,
    )
    # A parallelism too low for auto leaves no pruner, and no forecast flag on it.
    low = early(trainer_sweep(2, earlyStopping={"forecast": True}, algorithm={"name": "random"}))
    assert (low.name, low.forecast) == ("none", False)
    # trials written next to auto is kept too: every trial pruned one at a time, or the
    # startup trials alone with many at once.
    assert early(trainer_sweep(1, earlyStopping={"trials": "all"})).trials == "all"
    assert early(trainer_sweep(8, earlyStopping={"trials": "startup"})).trials == "startup"


def test_a_named_pruner_is_kept_as_written() -> None:
    assert early(trainer_sweep(8, earlyStopping={"name": "none"})).name == "none"
    median = early(trainer_sweep(1, earlyStopping={"name": "median", "minSteps": 10}))
    assert (median.name, median.min_steps) == ("median", 10)


def test_resolving_twice_changes_nothing() -> None:
    once = effective_spec(SweepSpec.model_validate(trainer_sweep(8)))
    assert effective_spec(once) == once


def test_max_steps_still_needs_forecast_or_auto() -> None:
    with pytest.raises(ValidationError, match=r"earlyStopping.maxSteps: only with forecast"):
        SweepSpec.model_validate(trainer_sweep(8, earlyStopping={"name": "asha", "maxSteps": 9}))


def test_the_accepted_condition_says_what_auto_became_and_why() -> None:
    def said(doc: dict[str, Any]) -> str:
        return auto_pruning.explain(SweepSpec.model_validate(doc))

    assert said(trainer_sweep(8)) == (
        "earlyStopping auto: asha (minSteps 5, reductionFactor 4, forecast; "
        "budget.parallelism 8 >= 4)"
    )
    assert said(trainer_sweep(2)) == (
        "earlyStopping auto: asha (minSteps 5, reductionFactor 4, forecast, startup trials "
        "only; budget.parallelism 2 < 4: the model's own trials run to the end)"
    )
    random = trainer_sweep(2, algorithm={"name": "random"})
    assert said(random) == "earlyStopping auto: none (budget.parallelism 2 < 4)"
    assert said(trainer_sweep(8, earlyStopping={"trials": "startup"})) == (
        "earlyStopping auto: asha (minSteps 5, reductionFactor 4, forecast, startup trials "
        "only; trials startup as written)"
    )
    flat = trainer_sweep(8, trainer={"maxSteps": 40, "evalEvery": 40})
    assert said(flat) == "earlyStopping auto: none (no evaluation before the last step to prune at)"
    assert said(trainer_sweep(8, earlyStopping={"name": "none"})) == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"earlyStopping": {"name": "none", "trials": "startup"}}, "startup needs a pruner"),
        (
            {
                "earlyStopping": {"name": "asha", "trials": "startup"},
                "algorithm": {"name": "random"},
            },
            r"startup needs an algorithm with startup trials \(auto, tpe, gp, cmaes\), not 'random'",
        ),
    ],
)
def test_startup_trials_only_needs_a_pruner_and_startup_trials(
    extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=rf"earlyStopping.trials: {message}"):
        SweepSpec.model_validate(trainer_sweep(1, **extra))
