"""The reconcile decisions without a cluster: pods and metrics in, status and acts out."""

from __future__ import annotations

import copy
from typing import Any

from kubetune.metrics import TrialReading
from kubetune.operator.pod_state import PodView
from kubetune.operator.reconcile import Effects, MetricsReading, SweepReconciler
from kubetune.trial_result import TrialResult

UID = "sweep-uid"


def body(generation: int = 1, status: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "algorithm": {"name": "random", "seed": 1},
        "budget": {"maxTrials": 4, "parallelism": 2, "maxFailedTrials": 1},
        "parameters": [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}],
        "template": {"spec": {"containers": [{"name": "t", "image": "img", "command": ["run"]}]}},
    }
    base.update(spec)
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "s", "namespace": "ns", "uid": UID, "generation": generation},
        "spec": base,
        "status": status or {},
    }


def running(name: str, attempt: int = 1) -> PodView:
    return PodView(
        name=name,
        uid=f"uid-{name}-{attempt}",
        attempt=attempt,
        kind="running",
        ip="10.0.0.1",
        owner_uid=UID,
    )


def succeeded(name: str, loss: float | None) -> PodView:
    result = TrialResult(status="succeeded", metrics={"eval_loss": loss} if loss else {}, steps=5)
    return PodView(
        name=name,
        uid=f"uid-{name}",
        attempt=1,
        kind="succeeded",
        result=result if loss else None,
        owner_uid=UID,
    )


def reconcile(
    rec: SweepReconciler,
    sweep: dict[str, Any],
    pods: dict[str, PodView],
    metrics: MetricsReading | None = None,
) -> Effects:
    rec.accept(sweep)
    effects = rec.decide(pods, metrics or MetricsReading(queried=False))
    for item in effects.create:
        rec.note_created(item.name, item.attempt)
    return effects


def new() -> SweepReconciler:
    return SweepReconciler("ns", "s", UID)


def states(effects: Effects) -> dict[int, str]:
    return {r["n"]: r["s"] for r in effects.status["history"]}


def test_first_pass_records_trials_before_creating_their_pods() -> None:
    effects = reconcile(new(), body(), {})
    assert [c.name for c in effects.create] == ["s-t0000", "s-t0001"]
    assert states(effects) == {0: "Pending", 1: "Pending"}
    assert effects.status["phase"] == "Running"
    params = {r["n"]: r["p"] for r in effects.status["history"]}
    for item in effects.create:
        env = {e["name"]: e.get("value") for e in item.manifest["spec"]["containers"][0]["env"]}
        assert env["KUBETUNE_PARAMS"] == f'{{"x": {params[item.number]["x"]}}}'


def test_restart_rebuilds_from_status_and_repeats_nothing() -> None:
    first = reconcile(new(), body(), {})
    # The operator died after saving status and creating only the first pod.
    pods = {"s-t0000": running("s-t0000")}
    restarted = reconcile(new(), body(status=first.status), pods)
    assert [c.name for c in restarted.create] == ["s-t0001"]
    assert restarted.create[0].params == first.create[1].params
    params = [(r["n"], r["p"]) for r in restarted.status["history"]]
    assert params == [(r["n"], r["p"]) for r in first.status["history"]]


def test_finished_trial_is_recorded_and_the_next_one_starts() -> None:
    rec = new()
    reconcile(rec, body(), {})
    pods = {"s-t0000": succeeded("s-t0000", 0.25), "s-t0001": running("s-t0001")}
    effects = reconcile(rec, body(), pods)
    assert states(effects) == {0: "Succeeded", 1: "Running", 2: "Pending"}
    assert [c.name for c in effects.create] == ["s-t0002"]
    assert effects.status["best"]["value"] == 0.25
    reasons = [e.reason for e in effects.events]
    assert "TrialSucceeded" in reasons and "NewBest" in reasons


def test_no_final_value_waits_while_metrics_are_down_and_fails_when_absent() -> None:
    rec = new()
    reconcile(rec, body(), {})
    pods = {"s-t0000": succeeded("s-t0000", None), "s-t0001": running("s-t0001")}
    down = MetricsReading(problem="Prometheus unreachable")
    effects = reconcile(rec, body(), pods, down)
    assert states(effects)[0] in ("Pending", "Running"), "not judged while the source is down"
    condition = {c["type"]: c for c in effects.status["conditions"]}["MetricsAvailable"]
    assert (condition["status"], condition["reason"]) == ("False", "PrometheusUnreachable")
    # Back up: the trial ran blind, so its missing value means a rerun, not a failure.
    effects = reconcile(rec, body(), pods, MetricsReading(values={}))
    assert states(effects)[0] == "Pending"
    assert effects.status["history"][0]["rq"] == 1
    assert effects.status["trials"]["failed"] == 0

    # A trial that never reported its objective while the source was up fails.
    rec = new()
    reconcile(rec, body(), {})
    effects = reconcile(rec, body(), pods, MetricsReading(values={}))
    assert states(effects)[0] == "Failed"
    assert "NoObjectiveValue" in effects.status["history"][0]["r"]


def test_final_value_from_the_last_reading_when_there_is_no_message() -> None:
    rec = new()
    reconcile(rec, body(), {})
    reading = MetricsReading(values={"s-t0000": TrialReading({"eval_loss": 0.4, "step": 3.0})})
    reconcile(rec, body(), {"s-t0000": running("s-t0000")}, reading)
    effects = reconcile(rec, body(), {"s-t0000": succeeded("s-t0000", None)}, MetricsReading())
    record = effects.status["history"][0]
    assert (record["s"], record["v"], record["st"]) == ("Succeeded", [0.4], 3)


def test_disrupted_trial_is_requeued_then_rerun_as_a_new_attempt() -> None:
    rec = new()
    reconcile(rec, body(), {})
    evicted = PodView(
        name="s-t0000", uid="old", attempt=1, kind="disrupted", reason="Evicted", owner_uid=UID
    )
    effects = reconcile(rec, body(), {"s-t0000": evicted, "s-t0001": running("s-t0001")})
    assert effects.status["history"][0]["rq"] == 1
    assert effects.delete == [("s-t0000", "old")], "the old attempt's pod goes first"
    assert not effects.create
    effects = reconcile(rec, body(), {"s-t0001": running("s-t0001")})
    assert [(c.name, c.attempt) for c in effects.create] == [("s-t0000", 2)]
    assert effects.status["trials"]["failed"] == 0


def test_pruned_and_unknown_pods_are_deleted() -> None:
    rec = new()
    reconcile(rec, body(), {})
    foreign = PodView(name="s-t0009", uid="f", attempt=1, kind="running", owner_uid="other")
    effects = reconcile(
        rec,
        body(),
        {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001"), "s-t0009": foreign},
    )
    assert ("s-t0009", "f") in effects.delete


def test_suspend_requeues_running_trials_and_deletes_their_pods() -> None:
    rec = new()
    reconcile(rec, body(), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    effects = reconcile(rec, body(generation=2, suspend=True), pods)
    assert effects.status["phase"] == "Suspended"
    assert set(states(effects).values()) == {"Requeued"}
    assert sorted(effects.delete) == [("s-t0000", "uid-s-t0000-1"), ("s-t0001", "uid-s-t0001-1")]
    assert not effects.create


def test_budget_edit_applies_and_search_space_edit_is_refused() -> None:
    rec = new()
    reconcile(rec, body(), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    wider = copy.deepcopy(body(generation=2)["spec"]["parameters"])
    wider[0]["max"] = 2.0
    effects = reconcile(rec, body(generation=2, parameters=wider), pods)
    accepted = {c["type"]: c for c in effects.status["conditions"]}["SpecAccepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "SearchSpaceChanged")
    assert not effects.create and effects.status["observedGeneration"] == 2
    assert [e.reason for e in effects.events] == ["SearchSpaceChanged"]

    more = {"maxTrials": 6, "parallelism": 3, "maxFailedTrials": 1}
    effects = reconcile(rec, body(generation=3, budget=more), pods)
    assert [c.name for c in effects.create] == ["s-t0002"]


def test_invalid_sweep_names_the_field() -> None:
    rec = new()
    bad = body()
    bad["spec"]["template"]["container"] = "nope"
    effects = reconcile(rec, bad, {})
    assert effects.status["phase"] == "Invalid"
    accepted = {c["type"]: c for c in effects.status["conditions"]}["SpecAccepted"]
    assert "spec.template.container" in accepted["message"]
    assert [e.type for e in effects.events] == ["Warning"]
    again = reconcile(rec, bad, {})
    assert not again.events, "one warning per problem, not one per pass"


def test_trainer_sweep_with_a_misspelled_objective_is_invalid() -> None:
    rec = new()
    bad = body(objective={"metric": "eval_los", "direction": "minimize"})
    del bad["spec"]["template"]
    bad["spec"]["parameters"] = [
        {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-3}
    ]
    bad["spec"]["trainer"] = {"image": "trainer:1", "maxSteps": 10, "evalEvery": 5}
    effects = reconcile(rec, bad, {})
    assert effects.status["phase"] == "Invalid"
    assert not effects.create, "no trial starts, none trains to its end for nothing"
    accepted = {c["type"]: c for c in effects.status["conditions"]}["SpecAccepted"]
    assert accepted["status"] == "False" and accepted["reason"] == "InvalidSpec"
    assert accepted["message"].startswith(
        "spec.objective.metric: the built-in trainer does not report 'eval_los' "
        "(did you mean eval_loss?)"
    )
    assert [(e.type, e.reason) for e in effects.events] == [("Warning", "InvalidSpec")]
    assert "did you mean eval_loss?" in effects.events[0].message


def test_name_too_long_for_trial_pods_is_invalid_with_the_reason() -> None:
    long_name = "n" * 58
    rec = SweepReconciler("ns", long_name, UID)
    bad = body()
    bad["metadata"]["name"] = long_name
    effects = reconcile(rec, bad, {})
    assert effects.status["phase"] == "Invalid" and not effects.create
    accepted = {c["type"]: c for c in effects.status["conditions"]}["SpecAccepted"]
    assert accepted["message"].startswith("metadata.name: too long (58 characters)")
    assert "must fit in 63 characters" in accepted["message"]
    assert [(e.type, e.reason) for e in effects.events] == [("Warning", "InvalidSpec")]


def test_completion_stops_running_trials() -> None:
    rec = new()
    sweep = body(objective={"metric": "eval_loss", "direction": "minimize", "target": 0.3})
    reconcile(rec, sweep, {})
    pods = {"s-t0000": succeeded("s-t0000", 0.1), "s-t0001": running("s-t0001")}
    effects = reconcile(rec, sweep, pods)
    assert effects.status["phase"] == "Succeeded"
    assert states(effects) == {0: "Succeeded", 1: "Pruned"}
    assert effects.delete == [("s-t0001", "uid-s-t0001-1")], "no GPU stays held"
    assert "SweepFinished" in [e.reason for e in effects.events]


def test_multi_objective_status_has_a_pareto_front() -> None:
    rec = new()
    sweep = body(
        objectives=[
            {"metric": "eval_loss", "direction": "minimize"},
            {"metric": "latency", "direction": "minimize"},
        ]
    )
    reconcile(rec, sweep, {})

    def done(name: str, loss: float, latency: float) -> PodView:
        result = TrialResult(status="succeeded", metrics={"eval_loss": loss, "latency": latency})
        return PodView(
            name=name, uid=name, attempt=1, kind="succeeded", result=result, owner_uid=UID
        )

    effects = reconcile(
        rec, sweep, {"s-t0000": done("s-t0000", 0.5, 2.0), "s-t0001": done("s-t0001", 0.9, 1.0)}
    )
    front = effects.status["paretoFront"]
    assert sorted(p["values"] for p in front) == [[0.5, 2.0], [0.9, 1.0]]
    assert effects.status["objective"] == "eval_loss,latency"


def test_refused_edit_after_a_restart_leaves_running_trials_alone() -> None:
    first = reconcile(new(), body(), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    wider = copy.deepcopy(body()["spec"]["parameters"])
    wider[0]["max"] = 2.0
    restarted = reconcile(new(), body(generation=2, status=first.status, parameters=wider), pods)
    assert not restarted.delete and not restarted.create
    assert restarted.status["phase"] == "Running"
    accepted = {c["type"]: c for c in restarted.status["conditions"]}["SpecAccepted"]
    assert accepted["reason"] == "SearchSpaceChanged"


def test_status_of_a_thousand_trial_sweep_stays_small() -> None:
    import json
    import random

    rng = random.Random(0)
    history = [
        {
            "n": n,
            "s": "Succeeded",
            "p": {"x": round(rng.random(), 6)},
            "v": [round(rng.uniform(0.5, 2.0), 6)],
            "st": 400,
            "iv": [[step, round(rng.uniform(0.5, 3.0), 5)] for step in range(50, 401, 50)],
        }
        for n in range(1000)
    ]
    sweep = body(
        budget={"maxTrials": 1000, "parallelism": 4, "maxFailedTrials": 1},
        status={"phase": "Running", "history": history},
    )
    effects = reconcile(new(), sweep, {})
    assert effects.status["phase"] == "Succeeded"
    assert len(json.dumps(effects.status).encode()) < 256 * 1024


def test_gauges_at_step_zero_are_not_evaluations() -> None:
    """A trainer serving its gauges before it evaluates shows 0 at step 0: no intermediate value."""
    rec = new()
    reconcile(rec, body(), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    early = TrialReading({"eval_loss": 0.0, "eval_step": 0.0, "step": 0.0})
    effects = reconcile(rec, body(), pods, MetricsReading(values={"s-t0000": early}))
    assert "iv" not in next(r for r in effects.status["history"] if r["n"] == 0)
    evaluated = TrialReading({"eval_loss": 0.7, "eval_step": 10.0, "step": 12.0})
    effects = reconcile(rec, body(), pods, MetricsReading(values={"s-t0000": evaluated}))
    assert next(r for r in effects.status["history"] if r["n"] == 0)["iv"] == [[10, 0.7]]
