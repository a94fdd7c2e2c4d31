"""Where a learning curve is heading: the forecast ASHA ranks by (earlyStopping.forecast).

Pure and cached: the same points give the same forecast, in every process and after a
rebuild from the history.
"""

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

# A forecast needs more points than c + a*exp(-t/tau) has unknowns (three): through
# three points the fit is exact whatever the curve, and says nothing of where it goes.
FORECAST_MIN_POINTS = 4
# Decay times tried by the fit, from half the first spacing to this many horizons: a
# slower curve is, within the run, a straight line, and a longer tau adds nothing.
FORECAST_MAX_TAU_HORIZONS = 4.0
FORECAST_TAUS = 48


def forecast(points: Sequence[tuple[int, float]], horizon: int) -> float | None:
    """The value a decreasing curve reaches at ``horizon``, from its ``points`` so far.

    Least-squares fit of ``c + a*exp(-step/tau)`` with ``a >= 0`` over a log grid of tau
    (for each tau, c and a are linear), then the fit's value at the horizon, never worse
    than the last point (a curve that stalls keeps its value). None with fewer than
    FORECAST_MIN_POINTS finite points, or while the descent still speeds up (_settling).
    For a maximized metric pass negated values.
    """
    kept = tuple(sorted((int(s), float(v)) for s, v in points if math.isfinite(v)))
    if len(kept) < FORECAST_MIN_POINTS or len({s for s, _ in kept}) < FORECAST_MIN_POINTS:
        return None
    if not _settling(kept[-3:]):
        return None
    return _forecast(kept, horizon)


def _settling(last: Sequence[tuple[int, float]]) -> bool:
    """Whether the last three points bend towards a level (the slope flattens).

    A curve whose descent still speeds up (warmup, a schedule's early phase) has no level
    in sight yet: an exponential fit through it says nothing about where it ends.
    """
    (s0, v0), (s1, v1), (s2, v2) = last
    if s0 == s1 or s1 == s2:
        return False
    return (v2 - v1) / (s2 - s1) >= (v1 - v0) / (s1 - s0)


@lru_cache(maxsize=65536)
def _forecast(points: tuple[tuple[int, float], ...], horizon: int) -> float:
    # Cached: to_prune forecasts every competitor at every check, from the same points.
    steps = np.array([p[0] for p in points], dtype=float)
    values = np.array([p[1] for p in points], dtype=float)
    gaps = np.diff(steps)
    spacing = float(np.min(gaps[gaps > 0]))
    taus = np.geomspace(
        max(0.5, spacing / 2), max(spacing, FORECAST_MAX_TAU_HORIZONS * horizon), FORECAST_TAUS
    )
    level, slope, errors = _fit(steps, values, taus)
    best = int(np.argmin(errors))
    # Then a finer grid between the coarse neighbours of the best tau.
    fine = np.geomspace(taus[max(0, best - 1)], taus[min(len(taus) - 1, best + 1)], 17)
    level, slope, errors = _fit(steps, values, fine)
    best = int(np.argmin(errors))
    if slope[best] <= 0:  # not coming down: a stalled or rising curve keeps its last value
        return float(values[-1])
    ahead = float(level[best] + slope[best] * math.exp(-horizon / float(fine[best])))
    return min(ahead, float(values[-1]))


def _fit(
    steps: "np.ndarray", values: "np.ndarray", taus: "np.ndarray"
) -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    """For each tau, least squares of values = level + slope*exp(-steps/tau), slope >= 0."""
    decay = np.exp(-steps[None, :] / taus[:, None])
    decay_mean = decay.mean(axis=1)
    value_mean = values.mean()
    centred = decay - decay_mean[:, None]
    spread = (centred**2).sum(axis=1)
    slope = np.where(
        spread > 0, (centred * (values - value_mean)).sum(axis=1) / np.maximum(spread, 1e-300), 0
    )
    slope = np.maximum(slope, 0.0)  # the curve may only come down
    level = value_mean - slope * decay_mean
    errors = ((level[:, None] + slope[:, None] * decay - values[None, :]) ** 2).sum(axis=1)
    return level, slope, errors
