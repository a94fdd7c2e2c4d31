"""Spec builders and a simulated sweep for the engine tests."""

import json
import random
from typing import Any

from kubetune.engine import SweepEngine
from kubetune.spec import SweepSpec, TrialRecord

SPACE: list[dict[str, Any]] = [
    {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-2, "log": True},
    {"name": "warmup", "type": "float", "min": 0.0, "max": 0.2},
    {"name": "layers", "type": "int", "min": 1, "max": 8},
    {"name": "lora_r", "type": "categorical", "values": [8, 16, 32, 64]},
]

GRID_SPACE: list[dict[str, Any]] = [
    {"name": "dropout", "type": "float", "min": 0.0, "max": 0.2, "step": 0.1},
    {"name": "layers", "type": "int", "min": 2, "max": 6, "step": 2},
    {"name": "act", "type": "categorical", "values": ["relu", "gelu"]},
]


def make_spec(**fields: Any) -> SweepSpec:
    """A sweep spec with a small default space; keyword fields are camelCase spec fields."""
    doc: dict[str, Any] = {
        "trainer": {"maxSteps": 400, "evalEvery": 50},
        "parameters": SPACE,
        "algorithm": {"name": "tpe", "seed": 7},
        "budget": {"maxTrials": 30, "parallelism": 3, "maxFailedTrials": 5},
    }
    doc.update(fields)
    return SweepSpec.model_validate(doc)


def through_json(history: list[TrialRecord]) -> list[TrialRecord]:
    """The history as the status stores it: JSON and back."""
    text = json.dumps(
        [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in history]
    )
    return [TrialRecord.model_validate(item) for item in json.loads(text)]


def rebuilt(engine: SweepEngine) -> SweepEngine:
    return SweepEngine(engine.spec, engine.sweep_name, through_json(engine.history()))


def loss(params: dict[str, Any], step: int) -> float:
    """A made-up learning curve that depends on every parameter."""
    lr = float(params.get("learning_rate", 1e-3))
    base = 1.0 + abs(lr - 3e-3) * 100 + float(params.get("warmup", 0.1))
    base += 0.01 * float(params.get("layers", 2))
    return base + 2.0 / (1 + step / 50)


def simulate(
    engine: SweepEngine, rng: random.Random, events: int, check: bool = False
) -> list[str]:
    """Drive the engine with random events; with check, compare against a rebuild each time.

    Returns a log of the decisions, so two runs can be compared.
    """
    log: list[str] = []
    steps: dict[int, int] = {}
    for _ in range(events):
        if engine.finished() is not None:
            break
        if check:
            twin = rebuilt(engine)
            assert twin.to_prune() == engine.to_prune()
            assert twin.history() == engine.history()
            twin_plans = twin.start_trials()
        plans = engine.start_trials()
        if check:
            assert plans == twin_plans
        log.extend(f"start {p.number} {p.params} {p.attempt}" for p in plans)
        running = engine.running()
        if not running:
            continue
        number = rng.choice(running)
        params = engine.trial(number).params
        roll = rng.random()
        step = steps.get(number, 0) + 50
        steps[number] = step
        if roll < 0.55 and step < 400:
            engine.report(number, step, loss(params, step))
            for doomed in engine.to_prune():
                engine.prune(doomed)
                log.append(f"prune {doomed}")
        elif roll < 0.85 or step >= 400:
            engine.complete(number, [loss(params, 400)], 400)
            log.append(f"complete {number}")
        elif roll < 0.93:
            engine.requeue(number, "preempted")
            steps.pop(number)
            log.append(f"requeue {number}")
        else:
            engine.fail(number, "OOMKilled")
            log.append(f"fail {number}")
    return log
