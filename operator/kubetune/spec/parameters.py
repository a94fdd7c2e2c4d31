"""Search-space parameters: float, int and categorical."""

import keyword
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

CategoricalValue = bool | int | float | str

# Most trials a sweep may run (budget.maxTrials): the CRD and the models share this bound.
MAX_TRIALS = 10_000
# No sweep can try more choices than it runs trials, and 10,000 short values keep a sweep
# object far below etcd's 1.5 MiB limit; a longer list is a mistake or an attack (the
# operator would hold and check every value on each accept).
MAX_CHOICES = MAX_TRIALS


class SpecModel(BaseModel):
    """Base of every spec model: camelCase in YAML, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class _NamedParameter(SpecModel):
    name: str = Field(
        description="Parameter name; the trainer argument it sets, or ${params.NAME} in a template.",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        max_length=63,
    )

    @model_validator(mode="after")
    def _not_keyword(self) -> "_NamedParameter":
        if keyword.iskeyword(self.name):
            raise ValueError(
                f"name: must be an identifier that is not a Python keyword, got {self.name!r}"
            )
        return self


class FloatParameter(_NamedParameter):
    """A real number in [min, max], optionally on a log scale or a step grid."""

    type: Literal["float"]
    min: float
    max: float
    log: bool = Field(default=False, description="Sample uniformly in log space; needs min > 0.")
    step: float | None = Field(
        default=None, gt=0, description="Grid spacing; needed by grid search."
    )

    @model_validator(mode="after")
    def _check_range(self) -> "FloatParameter":
        _check_bounds(self.min, self.max, self.log)
        if self.log and self.step is not None:
            raise ValueError("step: cannot be combined with log: true")
        if not (math.isfinite(self.min) and math.isfinite(self.max)):
            raise ValueError("min/max: must be finite numbers")
        return self


class IntParameter(_NamedParameter):
    """A whole number in [min, max], optionally on a log scale or a step grid."""

    type: Literal["int"]
    min: int
    max: int
    log: bool = False
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _check_range(self) -> "IntParameter":
        _check_bounds(self.min, self.max, self.log)
        if self.log and self.step != 1:
            raise ValueError("step: must be 1 when log: true")
        return self


class CategoricalParameter(_NamedParameter):
    """One of a fixed list of numbers, strings or booleans."""

    type: Literal["categorical"]
    values: list[CategoricalValue] = Field(
        min_length=1,
        max_length=MAX_CHOICES,
        description=f"The choices; at least one, at most {MAX_CHOICES}.",
    )

    @model_validator(mode="after")
    def _check_values(self) -> "CategoricalParameter":
        duplicate = first_duplicate(self.values)
        if duplicate is not None:
            raise ValueError(f"values: must be unique, {duplicate!r} appears twice")
        return self


def choice_key(value: CategoricalValue) -> tuple[type, CategoricalValue] | None:
    """What makes two categorical values the same choice: equal value and the same type.

    Python hashes 1, 1.0 and True alike (they compare equal), so the type is part of the
    key: True and 1, or 1 and 1.0, are distinct choices. NaN equals nothing, not even
    itself, so it has no key and is never a duplicate.
    """
    if isinstance(value, float) and math.isnan(value):
        return None
    return (type(value), value)


def first_duplicate(values: list[CategoricalValue]) -> CategoricalValue | None:
    """The first value that repeats an earlier one (same choice_key), in linear time."""
    seen: set[tuple[type, CategoricalValue]] = set()
    for value in values:
        key = choice_key(value)
        if key is None:
            continue
        if key in seen:
            return value
        seen.add(key)
    return None


Parameter = Annotated[
    FloatParameter | IntParameter | CategoricalParameter, Field(discriminator="type")
]


def _check_bounds(low: float, high: float, log: bool) -> None:
    if low >= high:
        raise ValueError(f"max: must be greater than min (min={low}, max={high})")
    if log and low <= 0:
        raise ValueError(f"min: must be > 0 when log: true (min={low})")


def grid_size(param: FloatParameter | IntParameter | CategoricalParameter) -> int | None:
    """Number of grid points, or None for a continuous range (no step)."""
    if isinstance(param, CategoricalParameter):
        return len(param.values)
    if isinstance(param, IntParameter):
        if param.log:
            return param.max - param.min + 1
        return (param.max - param.min) // param.step + 1
    if param.step is None:
        return None
    return math.floor((param.max - param.min) / param.step + 1e-9) + 1


def edge_values(param: Parameter) -> list[tuple[str, bool | int | float | str]]:
    """The values that bound a parameter, each with its field: every choice, or both ends."""
    if isinstance(param, CategoricalParameter):
        return [(f"values[{i}]", value) for i, value in enumerate(param.values)]
    return [("min", param.min), ("max", param.max)]


def sample_point(parameters: list[Parameter]) -> dict[str, bool | int | float | str]:
    """One valid point of the space (the first edge of each parameter).

    Building a trial from it finds a template or launch problem before any trial is recorded.
    """
    return {p.name: edge_values(p)[0][1] for p in parameters}
