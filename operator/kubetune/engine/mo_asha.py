"""MO-ASHA: successive halving for several objectives, decided from the records alone.

At a rung, trials are ranked by non-dominated sorting of their objective vectors, ties on
the last front that fits broken by crowding distance (NSGA-II's selection), and the best
``ceil(n / eta)`` continue. Rungs are AshaPruner's. Optuna refuses to prune studies of
several objectives, so the engine calls this over its own records (engine.to_prune).
"""

import math
from collections.abc import Mapping, Sequence

from kubetune.engine.pruners import AshaPruner

Vector = tuple[float, ...]


def nondominated_ranks(points: Sequence[Vector]) -> list[int]:
    """Front index of each point (0: not dominated), all objectives minimized."""
    ranks = [-1] * len(points)
    remaining = set(range(len(points)))
    front = 0
    while remaining:
        current = {
            i
            for i in remaining
            if not any(_dominates(points[j], points[i]) for j in remaining if j != i)
        }
        for i in current:
            ranks[i] = front
        remaining -= current
        front += 1
    return ranks


def _dominates(a: Vector, b: Vector) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def crowding(points: Sequence[Vector]) -> list[float]:
    """NSGA-II crowding distance within one front (inf at each objective's extremes)."""
    count = len(points)
    distance = [0.0] * count
    if count <= 2:
        return [math.inf] * count
    for axis in range(len(points[0])):
        order = sorted(range(count), key=lambda i: (points[i][axis], i))
        low, high = points[order[0]][axis], points[order[-1]][axis]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for k in range(1, count - 1):
            gap = points[order[k + 1]][axis] - points[order[k - 1]][axis]
            distance[order[k]] += gap / (high - low)
    return distance


def mo_survivors(vectors: Mapping[int, Vector], eta: int) -> set[int]:
    """Trials (by number) among the best ceil(n/eta) by non-dominated sorting.

    Vectors are minimized. Fronts fill the kept places in order; the front that does not
    fit whole keeps its most isolated points (crowding distance), ties to lower numbers.
    A trial whose vector equals a kept one's is kept too.
    """
    numbers = sorted(vectors)
    keep = max(1, math.ceil(len(numbers) / eta))
    points = [vectors[n] for n in numbers]
    ranks = nondominated_ranks(points)
    kept: set[int] = set()
    for front in range(max(ranks, default=-1) + 1):
        members = [i for i, r in enumerate(ranks) if r == front]
        if len(kept) + len(members) <= keep:
            kept.update(numbers[i] for i in members)
            continue
        spread = crowding([points[i] for i in members])
        by_spread = sorted(range(len(members)), key=lambda k: (-spread[k], numbers[members[k]]))
        kept.update(numbers[members[k]] for k in by_spread[: keep - len(kept)])
        break
    # Ties survive, as with one objective (survives): a trial equal to a kept one stays.
    chosen = {vectors[n] for n in kept}
    return {n for n in numbers if vectors[n] in chosen}


def rung_vector(
    series: Sequence[tuple[int, Vector]], resource: int, signs: Sequence[float]
) -> Vector | None:
    """A trial's objective vector at a rung (first entry at or after it), minimized."""
    for step, values in series:
        if step >= resource:
            if any(math.isnan(v) for v in values):
                return None
            return tuple(sign * v for sign, v in zip(signs, values, strict=True))
    return None


def mo_asha_prunes(
    asha: AshaPruner,
    own: int,
    series: Mapping[int, Sequence[tuple[int, Vector]]],
    signs: Sequence[float],
) -> bool:
    """MO-ASHA: whether trial ``own`` stops now, from every trial's vector series.

    ``series`` maps each trial of the sweep to its (step, objective values) entries in step
    order; ``signs`` is +1 per minimized and -1 per maximized objective. Judged at the
    highest rung the trial reached, as AshaPruner does with one objective.
    """
    mine = series.get(own)
    if not mine:
        return False
    resource = asha.resource(mine[-1][0])
    if resource is None:
        return False
    vectors = {
        number: vector
        for number, entries in series.items()
        if (vector := rung_vector(entries, resource, signs)) is not None
    }
    if own not in vectors:
        return False
    return own not in mo_survivors(vectors, asha.eta)
