"""Spec parameters as Optuna distributions, and values back and forth."""

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from kubetune.engine.space import SearchSpace, round_significant
from tests.engine.helpers import GRID_SPACE, make_spec


def test_distributions_follow_the_spec() -> None:
    space = SearchSpace.from_spec(make_spec())
    assert space.distributions["learning_rate"] == FloatDistribution(1e-5, 1e-2, log=True)
    assert space.distributions["layers"] == IntDistribution(1, 8)
    assert space.distributions["lora_r"] == CategoricalDistribution([8, 16, 32, 64])


def test_float_step_top_is_the_last_grid_point() -> None:
    spec = make_spec(
        parameters=[{"name": "d", "type": "float", "min": 0.0, "max": 0.25, "step": 0.1}]
    )
    space = SearchSpace.from_spec(spec)
    assert space.distributions["d"] == FloatDistribution(0.0, 0.2, step=0.1)
    assert space.grid() == {"d": [0.0, 0.1, 0.2]}


def test_grid_points_of_each_kind() -> None:
    space = SearchSpace.from_spec(make_spec(parameters=GRID_SPACE))
    assert space.grid() == {
        "dropout": [0.0, 0.1, 0.2],
        "layers": [2, 4, 6],
        "act": ["relu", "gelu"],
    }


def test_mixed_type_categoricals_keep_true_and_one_apart() -> None:
    values: list[bool | int | float | str] = [1, True, 1.0, "1", False, 0]
    spec = make_spec(parameters=[{"name": "c", "type": "categorical", "values": values}])
    space = SearchSpace.from_spec(spec)
    assert space.tagged == {"c"}
    for value in values:
        back = space.to_user(space.to_optuna({"c": value}))["c"]
        assert back == value and type(back) is type(value)


def test_plain_categoricals_are_not_tagged() -> None:
    spec = make_spec(parameters=[{"name": "c", "type": "categorical", "values": ["a", 2, 0.5]}])
    space = SearchSpace.from_spec(spec)
    assert space.tagged == frozenset()
    assert space.to_optuna({"c": 2}) == {"c": 2}


def test_rounding_keeps_values_short_and_in_range() -> None:
    space = SearchSpace.from_spec(make_spec())
    assert space.round("learning_rate", 0.00012345678) == 0.000123457
    assert space.round("learning_rate", 0.0099999999) == 0.01
    assert space.round("learning_rate", 0.01000000049) == 0.01
    assert space.round("layers", 3) == 3
    assert round_significant(0.0, 6) == 0.0


def test_int_in_json_is_accepted_for_a_float_parameter() -> None:
    space = SearchSpace.from_spec(make_spec())
    params = {"learning_rate": 1e-3, "warmup": 0, "layers": 2, "lora_r": 8}
    assert space.to_optuna(params)["warmup"] == 0.0


def test_value_not_among_the_choices_is_named() -> None:
    space = SearchSpace.from_spec(make_spec())
    with pytest.raises(ValueError, match="'lora_r': 12 is not in the search space"):
        space.to_optuna({"learning_rate": 1e-3, "warmup": 0.1, "layers": 2, "lora_r": 12})


def test_grid_points_off_zero_are_exact() -> None:
    spec = make_spec(
        parameters=[{"name": "x", "type": "float", "min": 0.25, "max": 0.75, "step": 0.5}]
    )
    space = SearchSpace.from_spec(spec)
    assert space.grid() == {"x": [0.25, 0.75]}
    assert space.distributions["x"] == FloatDistribution(0.25, 0.75, step=0.5)
    assert space.round("x", 0.7500000000000001) == 0.75
