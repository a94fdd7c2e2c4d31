"""algorithm auto, the default: GP for small numeric spaces up to a trial cap, then TPE."""

import random
import threading
import time
from typing import Any

import pytest
from optuna.samplers import GPSampler, TPESampler

from kubetune.engine import SweepEngine, samplers
from kubetune.engine.space import SearchSpace
from kubetune.spec import SweepSpec
from tests.engine.helpers import make_spec, simulate


def space(parameters: list[dict[str, Any]]) -> SearchSpace:
    return SearchSpace.from_spec(make_spec(parameters=parameters))


def floats(count: int) -> list[dict[str, Any]]:
    return [{"name": f"x{i}", "type": "float", "min": 0.0, "max": 1.0} for i in range(count)]


def test_auto_is_the_spec_default() -> None:
    spec = SweepSpec.model_validate(
        {"trainer": {"maxSteps": 100}, "budget": {"maxTrials": 5}, "algorithm": {"seed": 1}}
    )
    assert spec.algorithm.name == "auto"
    assert SweepSpec.model_validate({"trainer": {"maxSteps": 100}}).algorithm.name == "auto"


def test_auto_uses_the_gp_only_for_small_single_objective_spaces_below_the_cap() -> None:
    small = space(floats(2))
    assert samplers.auto_uses_gp(small, 1, 0)
    assert samplers.auto_uses_gp(small, 1, samplers.AUTO_GP_TRIALS - 1)
    assert not samplers.auto_uses_gp(small, 1, samplers.AUTO_GP_TRIALS)
    assert not samplers.auto_uses_gp(small, 2, 10), "several objectives: TPE"
    at_most = space(floats(samplers.AUTO_GP_MAX_PARAMS))
    assert samplers.auto_uses_gp(at_most, 1, 10)
    assert not samplers.auto_uses_gp(space(floats(samplers.AUTO_GP_MAX_PARAMS + 1)), 1, 10)
    few = {"name": "c", "type": "categorical", "values": list(range(samplers.AUTO_GP_MAX_CHOICES))}
    many = few | {"values": list(range(samplers.AUTO_GP_MAX_CHOICES + 1))}
    assert samplers.auto_uses_gp(space([*floats(2), few]), 1, 10)
    assert not samplers.auto_uses_gp(space([*floats(2), many]), 1, 10)


class Spy:
    """Records which sampler class suggested each trial number."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.asked: dict[int, str] = {}
        spy = self

        class SpyGP(GPSampler):
            def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
                spy.asked[trial.number] = "gp"
                return super().sample_relative(study, trial, search_space)

        class SpyTPE(TPESampler):
            def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
                spy.asked[trial.number] = "tpe"
                return super().sample_relative(study, trial, search_space)

        monkeypatch.setattr(samplers, "GPSampler", SpyGP)
        monkeypatch.setattr(samplers, "TPESampler", SpyTPE)


def test_auto_asks_random_then_gp_then_tpe_past_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    monkeypatch.setattr(samplers, "AUTO_GP_TRIALS", 7)
    spec = make_spec(
        algorithm={"name": "auto", "seed": 4, "startupTrials": 3},
        budget={"maxTrials": 10, "parallelism": 2},
    )
    simulate(SweepEngine(spec, "switch"), random.Random(3), events=80)
    # Startup trials (random points before a GP) ask neither model.
    assert {n: spy.asked.get(n, "startup") for n in range(10)} == (
        {n: "startup" for n in range(3)}
        | {n: "gp" for n in range(3, 7)}
        | {7: "tpe", 8: "tpe", 9: "tpe"}
    )


def test_auto_on_a_large_space_is_tpe_from_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    spec = make_spec(
        parameters=floats(samplers.AUTO_GP_MAX_PARAMS + 1),
        algorithm={"name": "auto", "seed": 4, "startupTrials": 2},
        budget={"maxTrials": 6, "parallelism": 1},
    )
    simulate(SweepEngine(spec, "large"), random.Random(3), events=40)
    assert set(spy.asked.values()) == {"tpe"}


def test_auto_starts_a_gp_with_random_points_and_tpe_with_sobol_points() -> None:
    def first_sampler(parameters: list[dict[str, Any]]) -> str:
        spec = make_spec(parameters=parameters, algorithm={"name": "auto", "seed": 1})
        engine = SweepEngine(spec, "start")
        engine.start_trials()
        return type(engine._sampler.inner).__name__

    assert first_sampler(floats(2)) == "RandomSampler"
    assert first_sampler(floats(samplers.AUTO_GP_MAX_PARAMS + 1)) == "_NumberedQMCSampler"


def test_gp_fits_run_one_at_a_time_across_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each GP fit holds torch working memory: two sweeps' asks on the operator's two engine
    # threads must not fit at once (samplers._GP_ASK), or the operator's peak doubles.
    guard = threading.Lock()
    inside = {"now": 0, "most": 0, "fits": 0}

    class SlowGP(GPSampler):
        def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
            with guard:
                inside["now"] += 1
                inside["most"] = max(inside["most"], inside["now"])
                inside["fits"] += 1
            time.sleep(0.3)  # long enough for the other thread's ask to arrive meanwhile
            with guard:
                inside["now"] -= 1
            return super().sample_relative(study, trial, search_space)

    monkeypatch.setattr(samplers, "GPSampler", SlowGP)

    def past_startup(name: str) -> SweepEngine:
        spec = make_spec(
            algorithm={"name": "auto", "seed": 1, "startupTrials": 2},
            budget={"maxTrials": 6, "parallelism": 2},
        )
        engine = SweepEngine(spec, name)
        for plan in engine.start_trials():
            engine.complete(plan.number, [random.Random(plan.number).random()], 100)
        return engine

    engines = [past_startup("a"), past_startup("b")]
    inside["fits"] = 0
    threads = [threading.Thread(target=e.start_trials) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert inside["fits"] >= 2, "both sweeps asked the GP"
    assert inside["most"] == 1
