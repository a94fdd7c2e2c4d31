"""A sweep's status at the largest allowed budget (10,000 trials) fits one etcd request with
room to spare, the simulated API (which refuses what etcd would) accepts it, and the engine
rebuilt from it decides exactly as the engine that wrote it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from kubernetes import client

from kubetune import API_GROUP, API_VERSION, PLURAL
from kubetune.engine import SweepEngine, summary
from kubetune.operator.sweep_status import compose_status
from kubetune.spec import SweepSpec, SweepStatus, TrialRecord, TrialState
from kubetune.spec.archive import CHUNK, ArchiveError
from kubetune.spec.sweep import MAX_ADDITIONAL_METRICS, MAX_METRIC_NAME
from tests.cluster.cluster import Cluster
from tests.engine.helpers import SPACE, loss

TRIALS = 10_000  # the largest budget.maxTrials
RECORDED = TRIALS - 6  # so that the engine still has new trials to suggest
RUNNING = 4
MIB = 1024 * 1024
# How trials of a long sweep end, in proportion: 6 succeed, 3 are pruned, 1 fails.
ENDINGS: tuple[TrialState, ...] = ("Succeeded",) * 6 + ("Pruned",) * 3 + ("Failed",)


def _spec(pruner: str) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "trainer": {"maxSteps": 800, "evalEvery": 100},
            "parameters": SPACE,
            "algorithm": {"name": "tpe", "seed": 4, "startupTrials": 10},
            "earlyStopping": {"name": pruner, "minSteps": 100, "reductionFactor": 2},
            "budget": {"maxTrials": TRIALS, "parallelism": RUNNING, "maxFailedTrials": TRIALS},
        }
    )


def _params(rng: random.Random) -> dict[str, Any]:
    return {
        "learning_rate": 10 ** rng.uniform(-5, -2),
        "warmup": rng.uniform(0.0, 0.2),
        "layers": rng.randint(1, 8),
        "lora_r": rng.choice([8, 16, 32, 64]),
    }


def _history(rng: random.Random) -> list[TrialRecord]:
    """A sweep near its 10,000-trial end: most trials finished, the last few running."""
    records = []
    for number in range(RECORDED):
        params = _params(rng)
        running = number >= RECORDED - RUNNING
        state: TrialState = "Running" if running else rng.choice(ENDINGS)
        last = {"Succeeded": 800, "Failed": 300}.get(state) or rng.choice([100, 200, 400])
        curve = [
            (step, summary.round_intermediate(loss(params, step) * rng.uniform(0.97, 1.03)))
            for step in range(100, last + 1, 100)
        ]
        records.append(
            TrialRecord(
                number=number,
                state=state,
                params=params,
                values=[summary.round_value(loss(params, 800))] if state == "Succeeded" else None,
                step=last if state in ("Succeeded", "Pruned") else None,
                intermediate=curve,
                reason="OOMKilled: the container used more memory than its limit"
                if state == "Failed"
                else None,
                requeues=1 if number % 97 == 0 and state == "Succeeded" else None,
            )
        )
    return records


def _decisions(engine: SweepEngine, rng: random.Random) -> list[Any]:
    """What the engine does next: prune whom, start what, then again after new reports."""
    out: list[Any] = [engine.to_prune()]
    for number in engine.running():
        engine.report(number, 500, rng.uniform(1.0, 3.0))
    out.append(engine.to_prune())
    for doomed in out[-1]:
        engine.prune(doomed)
    out.append(engine.start_trials())
    assert out[1] and out[2], "the check needs both prunings and new suggestions"
    return out


def _compose(engine: SweepEngine, spec: SweepSpec, status: SweepStatus) -> dict[str, Any]:
    return compose_status(
        status,
        engine,
        spec,
        engine.finished(),
        invalid=False,
        hold=None,
        generation=1,
        accepted_hash="h",
    )


def test_status_of_ten_thousand_trials_fits_and_rebuilds_exactly(
    crd: Cluster, namespace: str
) -> None:
    spec = _spec("median")
    history = _history(random.Random(2))
    plain = json.dumps(
        [r.model_dump(by_alias=True, exclude_none=True, mode="json") for r in history],
        separators=(",", ":"),
    )
    assert len(plain) > 1.5 * MIB, "the history must be one etcd would refuse as plain JSON"
    live = SweepEngine(spec, "big", history)
    status = SweepStatus()
    patch = _compose(live, spec, status)
    size = len(json.dumps({"status": patch}, separators=(",", ":")))
    assert size < MIB, f"status is {size / MIB:.2f} MiB"
    assert len(patch["archive"]) == RECORDED // CHUNK  # the open last chunk stays plain
    assert len(patch["history"]) <= 2 * CHUNK

    crd.create(
        {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "big", "namespace": namespace},
            "spec": spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
        }
    )
    custom: Any = client.CustomObjectsApi(crd.api_client())
    custom.patch_namespaced_custom_object_status(
        API_GROUP, API_VERSION, namespace, PLURAL, "big", {"status": patch}
    )
    stored = custom.get_namespaced_custom_object(API_GROUP, API_VERSION, namespace, PLURAL, "big")
    read_back = SweepStatus.of(stored)
    assert read_back.records() == live.history()

    rebuilt = SweepEngine(spec, "big", read_back.records())
    assert _decisions(rebuilt, random.Random(9)) == _decisions(live, random.Random(9))
    assert rebuilt.history() == live.history()
    # The next pass keeps the sealed chunks as they were: nothing archived is rewritten.
    again = _compose(live, spec, read_back)
    assert again["archive"] == patch["archive"]


def test_asha_rebuilt_from_the_archive_prunes_like_the_live_engine() -> None:
    spec = _spec("asha")
    history = _history(random.Random(3))
    live = SweepEngine(spec, "asha-big", history)
    status = SweepStatus()
    _compose(live, spec, status)
    through_json = SweepStatus.model_validate(json.loads(json.dumps(status.to_patch())))
    rebuilt = SweepEngine(spec, "asha-big", through_json.records())
    assert _decisions(rebuilt, random.Random(4)) == _decisions(live, random.Random(4))


def test_a_tampered_archive_chunk_is_named_not_silently_dropped() -> None:
    records = [
        TrialRecord(number=n, state="Succeeded", params={"x": n / 10}, values=[1.0])
        for n in range(CHUNK + 1)
    ]
    status = SweepStatus()
    status.keep_history(records)
    assert [c.first for c in status.archive] == [0] and len(status.history) == 1
    assert status.records() == records
    for data, problem in (
        ("!!!", "data does not decode"),
        (status.archive[0].data[:-8], "data does not decode"),
    ):
        broken = status.model_copy(deep=True)
        broken.archive[0].data = data
        with pytest.raises(ArchiveError, match=f"archive chunk 0-{CHUNK - 1}: {problem}"):
            broken.records()
    miscounted = status.model_copy(deep=True)
    miscounted.archive[0].count = 3
    with pytest.raises(ArchiveError, match="expected 3 records"):
        miscounted.records()


def test_additional_metrics_at_their_bounds_keep_ten_thousand_trials_under_a_mib() -> None:
    """spec.additionalMetrics at its limits, values a hostile trial makes incompressible."""
    rng = random.Random(3)
    names = [f"m{i}-" + "x" * (MAX_METRIC_NAME - 3) for i in range(MAX_ADDITIONAL_METRICS)]
    spec = _spec("median").model_copy(update={"additional_metrics": names})
    history = _history(random.Random(2))
    for record in history:
        if record.state != "Running":
            record.metrics = {n: summary.round_value(rng.uniform(-1e300, 1e300)) for n in names}
    patch = _compose(SweepEngine(spec, "big", history), spec, SweepStatus())
    size = len(json.dumps({"status": patch}, separators=(",", ":")))
    assert size < 0.9 * MIB, f"status is {size / MIB:.2f} MiB"
