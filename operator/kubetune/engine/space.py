"""Spec parameters -> Optuna distributions, and the value conversions around them.

Optuna's CategoricalDistribution finds a choice with ``==``, so ``True`` and ``1`` (or ``1``
and ``1.0``) would be the same choice. The spec allows them side by side (they differ in
type), so such a list is handed to Optuna as type-tagged strings and decoded on the way out.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from kubetune.spec import CategoricalParameter, FloatParameter, IntParameter, SweepSpec

ParamValue = bool | int | float | str
AnyParameter = FloatParameter | IntParameter | CategoricalParameter

# Significant digits kept for sampled floats: far below any training noise, and short in JSON.
PARAM_DIGITS = 6


def round_significant(value: float, digits: int) -> float:
    """``value`` to ``digits`` significant digits (finite values only)."""
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{digits}g}")


def _grid_point(low: float, step: float, index: int) -> float:
    # 12 significant digits drop the float noise of low + i * step (0.30000000000000004).
    return float(f"{low + index * step:.12g}")


def _ambiguous(values: list[ParamValue]) -> bool:
    """Two values equal under == although the spec knows they differ in type (1 and True).

    A set compares with == and hashes equal values alike, so fewer distinct members than
    values means such a pair (the spec already refused true duplicates). Linear, unlike
    comparing every pair. NaN equals nothing, so it is left out: it makes no pair.
    """
    plain = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return len(set(plain)) < len(plain)


def _tag(value: ParamValue) -> str:
    return f"{type(value).__name__}:{json.dumps(value)}"


def _untag(token: str) -> ParamValue:
    decoded: ParamValue = json.loads(token.split(":", 1)[1])
    return decoded


@dataclass(frozen=True)
class SearchSpace:
    """The spec's parameters as Optuna sees them, with the mapping back to user values."""

    parameters: tuple[AnyParameter, ...]
    distributions: dict[str, BaseDistribution]
    tagged: frozenset[str]  # categorical parameters handed to Optuna as type-tagged strings

    @classmethod
    def from_spec(cls, spec: SweepSpec) -> "SearchSpace":
        if not spec.parameters:
            raise ValueError("parameters: the search space is empty (no parameter to tune)")
        params = tuple(spec.parameters)
        dists: dict[str, BaseDistribution] = {}
        tagged: set[str] = set()
        for param in params:
            dists[param.name] = _distribution(param, tagged)
        return cls(parameters=params, distributions=dists, tagged=frozenset(tagged))

    def grid(self) -> dict[str, list[ParamValue]]:
        """Every parameter's grid points in Optuna's representation (for GridSampler)."""
        points: dict[str, list[ParamValue]] = {}
        for param in self.parameters:
            dist = self.distributions[param.name]
            if isinstance(dist, CategoricalDistribution):
                points[param.name] = list(dist.choices)  # type: ignore[arg-type]
            elif isinstance(param, IntParameter):
                if param.log:
                    points[param.name] = list(range(param.min, param.max + 1))
                else:
                    points[param.name] = list(range(param.min, param.max + 1, param.step))
            elif isinstance(param, FloatParameter):
                if param.step is None:
                    raise ValueError(f"parameters: grid search needs a step for {param.name!r}")
                count = math.floor((param.max - param.min) / param.step + 1e-9) + 1
                points[param.name] = [_grid_point(param.min, param.step, i) for i in range(count)]
        return points

    def round(self, name: str, value: Any) -> Any:
        """A sampled value rounded so it stays short in the history and inside the range."""
        dist = self.distributions.get(name)
        if not isinstance(dist, FloatDistribution) or not isinstance(value, float):
            return value
        if dist.step is not None:
            rounded = _grid_point(dist.low, dist.step, round((value - dist.low) / dist.step))
        else:
            rounded = round_significant(value, PARAM_DIGITS)
        return min(max(rounded, dist.low), dist.high)

    def to_user(self, optuna_params: dict[str, Any]) -> dict[str, ParamValue]:
        """Optuna's parameter values -> the values a trial receives (spec order)."""
        out: dict[str, ParamValue] = {}
        for param in self.parameters:
            value = optuna_params[param.name]
            out[param.name] = _untag(value) if param.name in self.tagged else value
        return out

    def to_optuna(self, user_params: Mapping[str, ParamValue]) -> dict[str, Any]:
        """Recorded trial parameters -> Optuna's values; ValueError names a value not in it.

        Range checks happen when the trial is added to the study (Optuna validates it).
        """
        out: dict[str, Any] = {}
        for param in self.parameters:
            if param.name not in user_params:
                raise ValueError(f"parameter {param.name!r} is missing")
            value = user_params[param.name]
            if param.name in self.tagged:
                value = _tag(value)
            dist = self.distributions[param.name]
            if isinstance(param, FloatParameter) and isinstance(value, int):
                value = float(value)  # JSON may write 1.0 as 1
            try:
                dist.to_internal_repr(value)
            except (ValueError, TypeError):
                raise ValueError(
                    f"parameter {param.name!r}: {value!r} is not in the search space"
                ) from None
            out[param.name] = value
        return out


def _distribution(param: AnyParameter, tagged: set[str]) -> BaseDistribution:
    if isinstance(param, CategoricalParameter):
        values = list(param.values)
        if _ambiguous(values):
            tagged.add(param.name)
            return CategoricalDistribution([_tag(v) for v in values])
        return CategoricalDistribution(values)
    if isinstance(param, IntParameter):
        return IntDistribution(param.min, param.max, log=param.log, step=param.step)
    if param.step is not None:
        # Optuna wants max on the step grid; the last grid point below max is the true top.
        count = math.floor((param.max - param.min) / param.step + 1e-9)
        return FloatDistribution(
            param.min, _grid_point(param.min, param.step, count), step=param.step
        )
    return FloatDistribution(param.min, param.max, log=param.log)
