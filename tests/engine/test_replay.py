"""bench/replay.py: the simulated clock is deterministic and counts compute exactly, and a
tabular problem only ever plays recorded runs, scored on the configuration's mean."""

import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from bench import peers
from bench.problems import LearningCurve
from bench.replay import (
    Params,
    Recorded,
    ReplayProblem,
    Run,
    SyntheticCurves,
    TabularCurves,
    Trace,
    distance,
    play,
)
from optuna.pruners import BasePruner, NopPruner
from optuna.samplers import BaseSampler, RandomSampler

CURVES = SyntheticCurves("curves", LearningCurve(max_steps=200, eval_every=20))
SPACE: list[dict[str, Any]] = [
    {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-2, "log": True},
    {"name": "lora_r", "type": "int", "min": 2, "max": 64, "log": True},
    {"name": "warmup_ratio", "type": "float", "min": 0.0, "max": 0.2},
    {"name": "lr_scheduler_type", "type": "categorical", "values": ["linear", "cosine"]},
]


def fingerprint(trace: Trace) -> tuple[object, ...]:
    return (trace.compute, trace.quality, trace.spent, trace.trials, trace.pruned)


def test_play_is_deterministic_for_a_seed() -> None:
    for name in ("kubetune", "kubetune-asha", "optuna-tpe-median", "ray-asha", "katib"):
        factory = peers.SEARCHERS[name][0]
        runs = [
            play(CURVES, factory(CURVES, seed, 3, 4000.0), 3, 4000.0, seed) for seed in (5, 5, 6)
        ]
        assert fingerprint(runs[0]) == fingerprint(runs[1]), name
        assert fingerprint(runs[0]) != fingerprint(runs[2]), name
        assert runs[0].spent >= 4000.0 and runs[0].trials > 1


@dataclass
class FixedProblem:
    """Trial n costs lengths[n] steps and reports once at its end, value = quality = n."""

    lengths: list[int]
    name: str = "fixed"
    unit: str = "steps"
    max_steps: int = 100
    eval_every: int = 1
    best: float = 0.0
    parameters: list[dict[str, object]] = field(default_factory=list)

    def run(self, params: Params, seed: int) -> Run:
        n = params["n"]
        return Run([(self.lengths[n], float(10 - n))], float(10 - n))


class Counter:
    def __init__(self, stop_after: int) -> None:
        self.next, self.stop_after = 0, stop_after
        self.completed: list[int] = []

    def ask(self) -> tuple[int, Params] | None:
        if self.next >= self.stop_after:
            return None
        self.next += 1
        return self.next - 1, {"n": self.next - 1}

    def report(self, number: int, step: int, value: float, last: bool) -> bool:
        return False

    def complete(self, number: int, value: float, step: int) -> None:
        self.completed.append(number)


def test_clock_counts_busy_slots_over_time() -> None:
    # Two workers: trials 0 (30 steps) and 1 (10) start at 0; 2 (10) starts at 10 when 1
    # ends, 3 (50) at 20 when 2 ends; 0 ends at 30, 3 at 70. Two slots busy until 30
    # (60 steps), then one until 70 (40): 100 steps in all.
    problem: ReplayProblem = FixedProblem([30, 10, 10, 50])
    searcher = Counter(4)
    trace = play(problem, searcher, 2, 1000.0, 0)
    assert searcher.completed == [1, 2, 0, 3]
    assert trace.spent == 100
    # Incumbent improves at each completion (values 9, 8, then 10 is worse, then 7).
    assert trace.compute == [20.0, 40.0, 100.0]
    assert trace.quality == [9.0, 8.0, 7.0]
    assert trace.compute_to(8.0) == 40.0 and math.isinf(trace.compute_to(1.0))
    assert trace.quality_at(39.0) == 9.0 and math.isinf(trace.quality_at(10.0))


def table() -> TabularCurves:
    rng = random.Random(3)
    runs = []
    for index in range(12):
        params = {
            "learning_rate": 10 ** rng.uniform(-5, -2),
            "lora_r": rng.choice([2, 8, 32, 64]),
            "warmup_ratio": rng.uniform(0, 0.2),
            "lr_scheduler_type": rng.choice(["linear", "cosine"]),
        }
        points = [(step, rng.uniform(1, 3)) for step in (10, 20, 30)]
        runs.append(Recorded(f"r{index}", params, points))
    # A replicated configuration: the trial's seed picks between the two runs.
    runs.append(Recorded("r0-again", dict(runs[0].params), [(10, 2.0), (20, 1.5), (30, 1.2)]))
    return TabularCurves("table", SPACE, runs)


def test_nearest_neighbour_only_returns_recorded_runs() -> None:
    problem = table()
    recorded = {id(run) for run in problem.runs}
    rng = random.Random(11)
    for trial in range(300):
        query = {
            "learning_rate": 10 ** rng.uniform(-5, -2),
            "lora_r": rng.randint(2, 64),
            "warmup_ratio": rng.uniform(0, 0.2),
            "lr_scheduler_type": rng.choice(["linear", "cosine"]),
        }
        chosen = problem.nearest(query, trial)
        assert id(chosen) in recorded
        # It is the nearest recorded configuration.
        nearest = min(distance(SPACE, query, r.params) for r in problem.runs)
        assert distance(SPACE, query, chosen.params) == nearest
        run = problem.run(query, trial)
        assert run.points == chosen.points and run.key == chosen.key
    # A recorded point maps to itself; its replicates are picked by seed.
    first = problem.runs[0]
    assert {problem.nearest(first.params, s).key for s in range(4)} == {"r0", "r0-again"}


def test_quality_is_the_configuration_mean_over_its_seeds() -> None:
    problem = table()
    first, again = problem.runs[0], problem.runs[-1]
    mean = (first.final + again.final) / 2
    # Whichever seed the trial drew, it is scored on what the configuration is worth.
    for seed in range(4):
        run = problem.run(first.params, seed)
        assert run.points in (first.points, again.points)
        assert run.quality == pytest.approx(mean)
    single = problem.runs[1]
    assert problem.run(single.params, 0).quality == single.final
    # The best is the best configuration's mean, not the luckiest run.
    means = [mean] + [r.final for r in problem.runs[1:-1]]
    assert problem.best == pytest.approx(min(means))
    assert problem.replicates == [2] + [1] * 11


def test_distance_scales_log_parameters_and_counts_categorical_mismatch() -> None:
    a = {"learning_rate": 1e-5, "lora_r": 2, "warmup_ratio": 0.0, "lr_scheduler_type": "linear"}
    b = {**a, "learning_rate": 1e-2}
    assert math.isclose(distance(SPACE, a, b), 1.0)
    assert math.isclose(distance(SPACE, a, {**a, "lr_scheduler_type": "cosine"}), 1.0)
    mid = {**a, "learning_rate": math.sqrt(1e-5 * 1e-2)}
    assert math.isclose(distance(SPACE, a, mid), 0.5)


def test_ray_asha_rungs_and_cutoff() -> None:
    random_search = peers.OptunaSearcher(peers.space_for(CURVES), *_random())
    asha = peers.RayAsha(random_search, max_t=40)
    assert [m for m, _ in asha._rungs] == [16, 4, 1]
    numbers = [asha.ask() for _ in range(5)]
    assert all(n is not None for n in numbers)
    # First results (rung 1). Reward = -loss; a trial stops when its reward is below the
    # 75th percentile of the rewards recorded at the rung before it.
    assert not asha.report(0, 10, 1.0, last=False)
    assert asha.report(1, 10, 2.0, last=False)  # -2 < cutoff of {-1} = -1: stopped
    assert asha.report(2, 10, 3.0, last=False)
    assert asha.report(3, 10, 4.0, last=False)
    assert not asha.report(4, 10, 1.5, last=False)  # -1.5 > 75th pct of {-1..-4}, -1.75


def test_katib_median_stop_waits_for_three_finished_trials() -> None:
    katib = peers.KatibMedianStop(peers.OptunaSearcher(peers.space_for(CURVES), *_random()))
    for _ in range(3):
        asked = katib.ask()
        assert asked is not None
        number = asked[0]
        for step, value in ((1, 3.0), (2, 2.0), (3, 1.0)):
            assert not katib.report(number, step, value, last=step == 3)
        katib.complete(number, 1.0, 3)
    asked = katib.ask()
    assert asked is not None
    number = asked[0]
    # Rule: median of the finished trials' mean values (2.0); from the 4th report on.
    assert [katib.report(number, s, 5.0, last=False) for s in (1, 2, 3)] == [False] * 3
    assert katib.report(number, 4, 5.0, last=False)


def _random() -> tuple[BaseSampler, BasePruner]:
    return RandomSampler(seed=0), NopPruner()


def test_a_peer_with_hyperband_replays_alike_run_after_run() -> None:
    # BOHB's brackets are assigned by a hash of the study's name: the bench names each study
    # after its problem and seed, so the same seed plays the same run in every process.
    make = peers.SEARCHERS["bohb"][0]

    def trace() -> tuple[int, int, float]:
        played = play(CURVES, make(CURVES, 3, 2, 4000.0), 2, 4000.0, 3)
        return played.trials, played.pruned, played.quality_at(4000.0)

    first = trace()
    assert first[1] > 0, "Hyperband pruned nothing: the check below would say nothing"
    assert trace() == first
