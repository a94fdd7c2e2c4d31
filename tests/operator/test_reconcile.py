"""The reconcile decisions without a cluster: pods and metrics in, status and acts out."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from kubetune.metrics import TrialReading
from kubetune.operator.pod_state import PodView, view
from kubetune.operator.reconcile import Effects, MetricsReading, SweepReconciler
from kubetune.trial_ending import TrialEnding
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
        live=True,
    )


def ended(
    name: str,
    exit_code: int,
    result: TrialResult | None = None,
    *,
    attempt: int = 1,
    live: bool = False,
    **facts: Any,
) -> PodView:
    return PodView(
        name=name,
        uid=f"uid-{name}-{attempt}",
        attempt=attempt,
        kind="ended",
        result=result,
        owner_uid=UID,
        live=live,
        ending=TrialEnding(exit_code, result=result, **facts),
    )


def succeeded(name: str, loss: float | None) -> PodView:
    result = TrialResult(status="succeeded", metrics={"eval_loss": loss} if loss else {}, steps=5)
    return ended(name, 0, result if loss else None)


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


def new(**options: Any) -> SweepReconciler:
    return SweepReconciler("ns", "s", UID, **options)


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


def test_a_resumed_trial_says_from_which_step_in_its_event() -> None:
    rec = new()
    reconcile(rec, body(), {})
    resumed = TrialResult(status="succeeded", metrics={"eval_loss": 0.25}, steps=5, resumed_from=3)
    plain = TrialResult(status="succeeded", metrics={"eval_loss": 0.5}, steps=5)
    pods = {"s-t0000": ended("s-t0000", 0, resumed), "s-t0001": ended("s-t0001", 0, plain)}
    effects = reconcile(rec, body(), pods)
    texts = [e.message for e in effects.events if e.reason == "TrialSucceeded"]
    assert texts == ["s-t0000: eval_loss=0.25 (resumed from step 3)", "s-t0001: eval_loss=0.5"]


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
    assert "NoObjective" in effects.status["history"][0]["r"]


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
    evicted = ended("s-t0000", 143, disruption="Evicted")
    effects = reconcile(rec, body(), {"s-t0000": evicted, "s-t0001": running("s-t0001")})
    assert effects.status["history"][0]["rq"] == 1
    assert effects.delete == [("s-t0000", "uid-s-t0000-1")], "the old attempt's pod goes first"
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
        return ended(name, 0, result)

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


def condition(effects: Effects, kind: str) -> dict[str, Any]:
    found: dict[str, Any] = {c["type"]: c for c in effects.status["conditions"]}[kind]
    return found


def test_a_sidecar_keeps_the_pod_running_but_the_trial_ends_and_the_pod_goes() -> None:
    rec = new()
    reconcile(rec, body(), {})
    done = TrialResult(status="succeeded", metrics={"eval_loss": 0.3}, steps=4)
    pods = {"s-t0000": ended("s-t0000", 0, done, live=True), "s-t0001": running("s-t0001")}
    effects = reconcile(rec, body(), pods)
    assert states(effects)[0] == "Succeeded"
    assert ("s-t0000", "uid-s-t0000-1") in effects.delete, "the sidecar must not hold the node"


def test_sigterm_without_a_disruption_fails_instead_of_requeueing_forever() -> None:
    rec = new()
    reconcile(rec, body(), {})
    pods = {"s-t0000": ended("s-t0000", 143), "s-t0001": running("s-t0001")}
    effects = reconcile(rec, body(), pods)
    record = effects.status["history"][0]
    assert (record["s"], record["r"].split(":")[0]) == ("Failed", "Stopped")


def test_requeues_after_disruptions_are_capped() -> None:
    rec = new()
    sweep = body(budget={"maxTrials": 4, "parallelism": 1, "maxFailedTrials": 3, "maxRequeues": 2})
    reconcile(rec, sweep, {})
    for attempt in (1, 2, 3):
        effects = reconcile(
            rec, sweep, {"s-t0000": ended("s-t0000", 143, attempt=attempt, disruption="Evicted")}
        )
    record = effects.status["history"][0]
    assert record["s"] == "Failed" and record["r"].startswith("TooManyRequeues")
    assert "budget.maxRequeues 2" in record["r"]
    # Suspending is kubetune's own stop: it never counts toward the cap.
    rec = new()
    reconcile(rec, sweep, {})
    for generation in range(2, 8):
        reconcile(rec, body(generation=generation, suspend=generation % 2 == 0), {})
    assert rec.engine is not None and rec.engine.trial(0).state != "Failed"


def test_a_refused_create_is_a_condition_and_fails_the_trial_when_it_lasts() -> None:
    rec = new()
    effects = reconcile(rec, body(), {})
    refused = effects.create[0]
    for _ in range(3):
        rec.create_refused(refused.name, refused.attempt, 403, 'pods "x" is forbidden: violates')
        effects = rec.decide({}, MetricsReading(queried=False))
        if states(effects)[0] == "Failed":
            break
        assert condition(effects, "TrialsStarted")["reason"] == "CreateRefused"
    assert states(effects)[0] == "Failed"
    assert effects.status["history"][0]["r"].startswith("CreateRefused: HTTP 403")
    warnings = [e for e in effects.events if e.type == "Warning"]
    assert {e.reason for e in warnings} >= {"TrialFailed"}


def test_a_full_quota_waits_instead_of_failing() -> None:
    rec = new()
    effects = reconcile(rec, body(), {})
    item = effects.create[0]
    for _ in range(5):
        rec.create_refused(item.name, item.attempt, 403, "exceeded quota: gpu-quota")
        effects = rec.decide({}, MetricsReading(queried=False))
    assert states(effects)[0] == "Pending"
    assert "exceeded quota" in condition(effects, "TrialsStarted")["message"]


def test_image_pull_errors_get_a_grace_period() -> None:
    clock = [1_000_000.0]
    rec = new(start_grace=60.0, wall_clock=lambda: clock[0])
    reconcile(rec, body(), {})
    created = "1970-01-12T13:46:40Z"  # = 1_000_000 s

    def pulling(reason: str) -> PodView:
        return PodView(
            name="s-t0000",
            uid="p",
            attempt=1,
            kind="pending",
            owner_uid=UID,
            live=True,
            created_at=created,
            waiting=(reason, "back-off pulling image"),
        )

    effects = reconcile(rec, body(), {"s-t0000": pulling("ImagePullBackOff")})
    assert states(effects)[0] == "Pending"
    started = condition(effects, "TrialsStarted")
    assert (started["status"], started["reason"]) == ("False", "ImagePullBackOff")
    clock[0] += 61
    effects = reconcile(rec, body(), {"s-t0000": pulling("ImagePullBackOff")})
    assert states(effects)[0] == "Failed"
    assert effects.status["history"][0]["r"].startswith("StartFailed: ImagePullBackOff")
    # A name that can never resolve fails at once.
    rec = new(start_grace=60.0, wall_clock=lambda: clock[0] - 61)
    reconcile(rec, body(), {})
    effects = reconcile(rec, body(), {"s-t0000": pulling("InvalidImageName")})
    assert states(effects)[0] == "Failed"


def test_unschedulable_trials_show_the_schedulers_message() -> None:
    rec = new()
    reconcile(rec, body(), {})
    waiting = PodView(
        name="s-t0000",
        uid="p",
        attempt=1,
        kind="pending",
        owner_uid=UID,
        live=True,
        unschedulable="Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    )
    effects = reconcile(rec, body(), {"s-t0000": waiting, "s-t0001": running("s-t0001")})
    started = condition(effects, "TrialsStarted")
    assert started["status"] == "False" and "Insufficient nvidia.com/gpu" in started["message"]
    effects = reconcile(rec, body(), {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")})
    assert condition(effects, "TrialsStarted")["status"] == "True"


def test_invalid_spec_after_a_restart_keeps_the_running_trials() -> None:
    first = reconcile(new(), body(), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    bad = body(generation=2, status=first.status)
    bad["spec"]["template"]["container"] = "nope"
    restarted = reconcile(new(), bad, pods)
    assert restarted.status["phase"] == "Invalid"
    assert not restarted.delete and not restarted.create
    assert len(restarted.status["history"]) == 2, "no record lost while held"


def test_a_trials_free_text_reaches_status_and_events_only_as_a_masked_excerpt() -> None:
    rec = new()
    reconcile(rec, body(), {})
    leak = "hf_" + "A1b2C3d4" * 4
    hostile = TrialResult(status="failed", reason=f"auth failed token={leak} " + "y" * 10_000)
    effects = reconcile(
        rec, body(), {"s-t0000": ended("s-t0000", 1, hostile), "s-t0001": running("s-t0001")}
    )
    reason = effects.status["history"][0]["r"]
    assert reason.startswith("TrialFailed: auth failed") and leak not in reason
    messages = [e.message for e in effects.events]
    assert messages and all(leak not in m and len(m) <= 512 for m in messages)


def test_algorithm_edit_is_refused_and_a_status_from_0_1_is_adopted() -> None:
    from kubetune.spec import effective_spec, parse_sweep
    from kubetune.spec.identity import legacy_search_space_digest

    rec = new()
    first = reconcile(rec, body(), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    effects = reconcile(rec, body(generation=2, algorithm={"name": "tpe", "seed": 1}), pods)
    assert condition(effects, "SpecAccepted")["reason"] == "SearchSpaceChanged"
    assert "spec.algorithm" in condition(effects, "SpecAccepted")["message"]
    # An operator upgraded from 0.1 finds the old digest in status and carries on.
    old = dict(first.status)
    spec = effective_spec(parse_sweep(body(), "ns/s").spec)
    old["searchSpaceHash"] = legacy_search_space_digest(spec)
    restarted = reconcile(new(), body(status=old), pods)
    assert condition(restarted, "SpecAccepted")["status"] == "True"
    assert restarted.status["searchSpaceHash"] == first.status["searchSpaceHash"]


def test_min_strategy_counts_readings_and_status_records_additional_metrics() -> None:
    rec = new()
    spec: dict[str, Any] = {
        "objective": {"metric": "val/loss", "strategy": "min"},
        "additionalMetrics": ["Validation-accuracy", "junk"],
    }
    reconcile(rec, body(**spec), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    # While it ran the operator read val/loss 0.2 at step 4 from its series val_loss.
    low = TrialReading({"val_loss": 0.2, "eval_step": 4.0, "step": 4.0})
    reconcile(rec, body(**spec), pods, MetricsReading(values={"s-t0000": low}))
    final = TrialResult(
        status="succeeded",
        metrics={"val/loss": 0.5, "Validation-accuracy": 0.812345678, "junk": float("nan")},
        intermediate={"val/loss": [(2, 0.9), (8, 0.5)]},
        steps=8,
    )
    pods["s-t0000"] = ended("s-t0000", 0, final)
    effects = reconcile(rec, body(**spec), pods)
    record = next(r for r in effects.status["history"] if r["n"] == 0)
    assert (record["s"], record["v"], record["st"]) == ("Succeeded", [0.2], 4)
    # Rounded like values; the NaN a hostile trial reported is dropped.
    assert record["am"] == {"Validation-accuracy": 0.812346}
    assert effects.status["best"]["metrics"] == {"Validation-accuracy": 0.812346}


def test_a_strategy_edit_is_refused_like_an_objective_edit() -> None:
    rec = new()
    reconcile(rec, body(), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    edited = body(generation=2, objective={"metric": "eval_loss", "strategy": "max"})
    effects = reconcile(rec, edited, pods)
    accepted = {c["type"]: c for c in effects.status["conditions"]}["SpecAccepted"]
    assert (accepted["status"], accepted["reason"]) == ("False", "SearchSpaceChanged")
    assert "spec.objective" in accepted["message"]
    # additionalMetrics is recorded, never judged: editing it is accepted.
    more = body(generation=3, additionalMetrics=["eval_accuracy"])
    effects = reconcile(rec, more, pods)
    accepted = {c["type"]: c for c in effects.status["conditions"]}["SpecAccepted"]
    assert accepted["status"] == "True"


def _gpu_pod(
    manifest: dict[str, Any],
    started: str,
    finished: str | None,
    reason: str | None = None,
    **terminated: Any,
) -> PodView:
    """The pod the operator built, as the API returns it once its trial container ended."""
    pod = copy.deepcopy(manifest)
    pod["metadata"]["uid"] = f"uid-{pod['metadata']['name']}"
    state: dict[str, Any] = (
        {"terminated": {"finishedAt": finished, **terminated}}
        if finished is not None
        else {"running": {"startedAt": started}}
    )
    pod["status"] = {
        "phase": "Running" if finished is None else "Failed" if reason else "Succeeded",
        "startTime": started,
        "containerStatuses": [{"name": "t", "state": state}],
    }
    if reason is not None:
        pod["status"]["reason"] = reason
    return view(pod)


def test_gpu_seconds_from_pod_times_and_requested_gpus_reach_status() -> None:
    gpu_template = {
        "spec": {
            "containers": [
                {
                    "name": "t",
                    "image": "img",
                    "command": ["run"],
                    "resources": {"limits": {"nvidia.com/gpu": 2}},
                },
                {"name": "side", "image": "img", "resources": {"limits": {"nvidia.com/gpu": 1}}},
            ]
        }
    }
    sweep = body(template=gpu_template)
    rec = new()
    first = reconcile(rec, sweep, {})
    manifests = {c.name: c.manifest for c in first.create}
    message = TrialResult(status="succeeded", metrics={"eval_loss": 0.5}, steps=5).to_message()
    done = _gpu_pod(
        manifests["s-t0000"],
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:10:00Z",
        exitCode=0,
        message=message,
    )
    assert done.gpus == 3
    pods = {"s-t0000": done, "s-t0001": running("s-t0001")}
    effects = reconcile(rec, sweep, pods)
    record = effects.status["history"][0]
    assert record["s"] == "Succeeded" and record["gs"] == 3 * 600
    assert effects.status["gpuHours"] == 0.5

    # An evicted attempt adds its own running time; the rerun adds its own again.
    evicted = _gpu_pod(
        manifests["s-t0001"],
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:01:00Z",
        reason="Evicted",
        exitCode=143,
    )
    effects = reconcile(rec, sweep, {"s-t0000": done, "s-t0001": evicted})
    record = effects.status["history"][1]
    assert record["rq"] == 1 and record["gs"] == 3 * 60
    assert effects.status["gpuHours"] == round((1800 + 180) / 3600, 4)

    # A restart rebuilds the totals from the history alone.
    restarted = reconcile(new(), body(template=gpu_template, status=effects.status), {})
    assert restarted.status["gpuHours"] == effects.status["gpuHours"]


def test_status_best_names_the_best_trials_artifacts_and_survives_a_restart() -> None:
    rec = new()
    reconcile(rec, body(), {})

    def done(name: str, loss: float) -> PodView:
        path = f"/output/{name}/final"
        result = TrialResult(status="succeeded", metrics={"eval_loss": loss}, adapter_path=path)
        return ended(name, 0, result)

    pods = {"s-t0000": done("s-t0000", 0.5), "s-t0001": done("s-t0001", 0.25)}
    effects = reconcile(rec, body(), pods)
    assert effects.status["best"]["trial"] == "s-t0001"
    assert effects.status["best"]["artifacts"] == "/output/s-t0001/final"
    # Each succeeded trial's path is in its record: the engine rebuilt from status still knows.
    restarted = reconcile(new(), body(status=effects.status), {})
    assert restarted.status["best"]["artifacts"] == "/output/s-t0001/final"


def test_a_hostile_adapter_path_never_reaches_status() -> None:
    rec = new()
    reconcile(rec, body(), {})
    huge = "/out/" + "a" * 100_000
    controlled = "/out/s-t0001/final\x1b[2J\nInjected: line"
    pods = {
        "s-t0000": ended(
            "s-t0000",
            0,
            TrialResult(status="succeeded", metrics={"eval_loss": 0.25}, adapter_path=huge),
        ),
        "s-t0001": ended(
            "s-t0001",
            0,
            TrialResult(status="succeeded", metrics={"eval_loss": 0.5}, adapter_path=controlled),
        ),
    }
    effects = reconcile(rec, body(), pods)
    assert effects.status["best"]["trial"] == "s-t0000"
    assert "artifacts" not in effects.status["best"]
    assert all("a" not in record for record in effects.status["history"])


# ---- Kueue (spec.queueName) -------------------------------------------------------------------

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def queued(name: str, attempt: int = 1) -> PodView:
    return PodView(
        name=name,
        uid=f"uid-{name}-{attempt}",
        attempt=attempt,
        kind="queued",
        created_at="2026-01-01T00:00:00Z",
        owner_uid=UID,
        job=True,
    )


def test_trials_kueue_holds_back_are_queued_and_keep_their_slots() -> None:
    sweep = body(queueName="gpu", budget={"maxTrials": 4, "parallelism": 2})
    rec = new()
    reconcile(rec, sweep, {})
    effects = reconcile(rec, sweep, {"s-t0000": running("s-t0000"), "s-t0001": queued("s-t0001")})
    assert states(effects) == {0: "Running", 1: "Queued"}
    trials = effects.status["trials"]
    assert (trials["running"], trials["queued"], trials["pending"], trials["total"]) == (1, 1, 0, 2)
    assert effects.create == []  # a queued trial holds its parallelism slot
    started = condition(effects, "TrialsStarted")
    assert (started["status"], started["reason"]) == ("False", "Queued")
    assert (
        started["message"] == "1 trial(s) queued by Kueue wait for admission by queue gpu: s-t0001"
    )
    assert "1 queued" in effects.status["message"]
    # Admitted: its pod is pending, then running, and the condition clears.
    admitted = PodView(name="s-t0001", uid="p", attempt=1, kind="pending", owner_uid=UID)
    effects = reconcile(rec, sweep, {"s-t0000": running("s-t0000"), "s-t0001": admitted})
    assert states(effects) == {0: "Running", 1: "Pending"}
    assert condition(effects, "TrialsStarted")["status"] == "True"
    effects = reconcile(rec, sweep, {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")})
    assert states(effects) == {0: "Running", 1: "Running"}
    assert effects.status["trials"]["queued"] == 0


def test_a_queued_trial_never_times_out_and_its_clock_starts_when_it_runs() -> None:
    sweep = body(queueName="gpu", budget={"maxTrials": 1, "parallelism": 1, "trialTimeout": "1m"})
    clock = [T0 + 3600.0]  # queued an hour, far past trialTimeout
    rec = new(wall_clock=lambda: clock[0], start_grace=60.0)
    reconcile(rec, sweep, {})
    effects = reconcile(rec, sweep, {"s-t0000": queued("s-t0000")})
    assert states(effects) == {0: "Queued"}
    # Admitted an hour after its creation: its pod started just now.
    started = dataclasses.replace(running("s-t0000"), started_at="2026-01-01T01:00:00Z")
    effects = reconcile(rec, sweep, {"s-t0000": started})
    assert states(effects) == {0: "Running"}
    clock[0] += 61  # now past trialTimeout since the pod started
    effects = reconcile(rec, sweep, {"s-t0000": started})
    assert states(effects) == {0: "Failed"}
    assert "trialTimeout" in effects.status["history"][0]["r"]


def test_a_start_problem_outranks_queued_trials_in_the_condition() -> None:
    sweep = body(queueName="gpu")
    rec = new()
    reconcile(rec, sweep, {})
    stuck = PodView(
        name="s-t0000",
        uid="p",
        attempt=1,
        kind="pending",
        owner_uid=UID,
        unschedulable="Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
    )
    effects = reconcile(rec, sweep, {"s-t0000": stuck, "s-t0001": queued("s-t0001")})
    started = condition(effects, "TrialsStarted")
    assert started["reason"] == "Unschedulable"
    assert started["message"].endswith("; 1 trial(s) queued by Kueue")


def test_a_running_trial_whose_job_kueue_suspends_again_is_rerun() -> None:
    sweep = body(queueName="gpu", budget={"maxTrials": 1, "parallelism": 1})
    rec = new()
    reconcile(rec, sweep, {})
    reconcile(rec, sweep, {"s-t0000": running("s-t0000")})
    effects = reconcile(rec, sweep, {"s-t0000": queued("s-t0000")})
    (record,) = effects.status["history"]
    assert record["s"] == "Pending" and record["rq"] == 1  # requeued and started again
    assert record["r"].startswith("Preempted")
    assert effects.delete == [("s-t0000", "uid-s-t0000-1")]  # the old Job goes first
    effects = reconcile(rec, sweep, {})
    assert [(c.name, c.attempt) for c in effects.create] == [("s-t0000", 2)]


def test_multi_objective_sweep_prunes_dominated_trials_from_readings() -> None:
    rec = new()
    sweep = body(
        objectives=[
            {"metric": "eval_loss", "direction": "minimize"},
            {"metric": "eval_accuracy", "direction": "maximize"},
        ],
        earlyStopping={"name": "asha", "minSteps": 10, "reductionFactor": 2},
        budget={"maxTrials": 6, "parallelism": 3, "maxFailedTrials": 1},
    )
    reconcile(rec, sweep, {})
    pods = {f"s-t000{n}": running(f"s-t000{n}") for n in range(3)}
    # (loss, accuracy): 0 and 1 each best at one objective, 2 worse at both.
    readings = {
        f"s-t000{n}": TrialReading({"eval_loss": loss, "eval_accuracy": acc, "eval_step": 10.0})
        for n, (loss, acc) in enumerate([(0.5, 0.6), (0.9, 0.8), (1.2, 0.4)])
    }
    effects = reconcile(rec, sweep, pods, MetricsReading(values=readings))
    assert states(effects) == {0: "Running", 1: "Running", 2: "Pruned", 3: "Pending"}
    assert "TrialPruned" in [e.reason for e in effects.events]
    history = {r["n"]: r for r in effects.status["history"]}
    assert history[2]["iv"] == [[10, 1.2]] and history[2]["io"] == [[0.4]]


def test_a_sweep_started_when_tpe_was_the_default_keeps_tpe_after_an_upgrade() -> None:
    # An operator whose default was tpe wrote the digest of the spec with tpe filled in;
    # the stored object leaves algorithm.name out (or algorithm altogether).
    unnamed = body(algorithm={"seed": 1})
    bare = body()
    del bare["spec"]["algorithm"]
    before = reconcile(new(), body(algorithm={"name": "tpe", "seed": 1}), {})
    pods = {"s-t0000": running("s-t0000"), "s-t0001": running("s-t0001")}
    for sweep in (unnamed, bare):
        if sweep is bare:
            before = reconcile(new(), body(algorithm={"name": "tpe"}), {})
        rec = new()
        after = reconcile(rec, sweep | {"status": before.status}, pods)
        assert condition(after, "SpecAccepted")["status"] == "True"
        assert rec.engine is not None and rec.engine.spec.algorithm.name == "tpe"
        assert after.status["searchSpaceHash"] == before.status["searchSpaceHash"]
        assert len(after.status["history"]) == 2  # the trials in flight carry on
    # Naming the new default explicitly is an edit of the study: refused as before.
    named = reconcile(new(), body(algorithm={"name": "auto"}, status=before.status), pods)
    assert condition(named, "SpecAccepted")["reason"] == "SearchSpaceChanged"
    # A sweep created now runs the new default, and keeps it across a restart.
    rec = new()
    fresh = reconcile(rec, unnamed, {})
    assert rec.engine is not None and rec.engine.spec.algorithm.name == "auto"
    again = new()
    reconcile(again, unnamed | {"status": fresh.status}, pods)
    assert again.engine is not None and again.engine.spec.algorithm.name == "auto"


def test_a_sweep_adopted_from_0_1_without_an_algorithm_name_keeps_tpe() -> None:
    from kubetune.spec import effective_spec, parse_sweep
    from kubetune.spec.identity import legacy_search_space_digest

    unnamed = body(algorithm={"seed": 1})
    first = reconcile(new(), unnamed, {})
    old = dict(first.status)
    old["searchSpaceHash"] = legacy_search_space_digest(
        effective_spec(parse_sweep(unnamed, "s").spec)
    )
    rec = new()
    adopted = reconcile(rec, unnamed | {"status": old}, {"s-t0000": running("s-t0000")})
    assert condition(adopted, "SpecAccepted")["status"] == "True"
    assert rec.engine is not None and rec.engine.spec.algorithm.name == "tpe"


def test_the_accepted_condition_says_what_earlyStopping_auto_became() -> None:
    # A template sweep that gives the last step and runs 4 at once: auto turns ASHA on.
    wide = body(
        budget={"maxTrials": 8, "parallelism": 4, "maxFailedTrials": 1},
        earlyStopping={"maxSteps": 800},
    )
    accepted = condition(reconcile(new(), wide, {}), "SpecAccepted")
    assert accepted["status"] == "True"
    assert accepted["message"].startswith("earlyStopping auto: asha (minSteps 100,")
    narrow = condition(reconcile(new(), body(), {}), "SpecAccepted")
    assert narrow["message"] == "earlyStopping auto: none (budget.parallelism 2 < 4)"
    # 2 at once with an algorithm that has startup trials: those alone are pruned.
    told = body(earlyStopping={"maxSteps": 800}, algorithm={"name": "tpe", "seed": 1})
    screened = condition(reconcile(new(), told, {}), "SpecAccepted")
    assert screened["message"] == (
        "earlyStopping auto: asha (minSteps 100, reductionFactor 4, forecast, startup trials "
        "only; budget.parallelism 2 < 4: the model's own trials run to the end)"
    )
