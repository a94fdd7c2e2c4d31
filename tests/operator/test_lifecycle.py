"""The operator on the test cluster (real kopf, kubectl, API clients; simulated API server
and kubelet): sweeps run, prune, suspend, refuse edits, fail cleanly, and clean up."""

from __future__ import annotations

import json
from typing import Any

from kubetune import API_GROUP, PLURAL, conventions
from tests.cluster.cluster import Cluster

from .helpers import (
    condition,
    event_reasons,
    events,
    history,
    sweep,
    trial_pods,
    wait_condition,
    wait_event,
    wait_phase,
    wait_running,
    wait_status,
)
from .runner import InProcessOperator, sweep_manifest

FAST = {"STEPS": "5", "STEP_SECONDS": "0.1"}


def _patch_spec(cluster: Cluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    result = cluster.kubectl(
        "patch", PLURAL, name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": spec})
    )
    assert result.returncode == 0, result.stderr


def test_sweep_runs_to_success_with_status_and_events(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.create(sweep_manifest("basic", namespace, env=FAST, max_trials=4, parallelism=2))
    final = wait_phase(crd, namespace, "basic", "Succeeded", "Failed", timeout=60)
    assert final["phase"] == "Succeeded"
    assert final["trials"] == {
        "total": 4,
        "pending": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 4,
        "pruned": 0,
        "failed": 0,
    }
    records = history(final)
    assert sorted(records) == [0, 1, 2, 3]
    best = final["best"]
    values = {n: r["v"][0] for n, r in records.items()}
    assert best["value"] == min(values.values())
    assert best["trial"] == conventions.trial_name("basic", best["number"])
    assert best["parameters"]["x"] == records[best["number"]]["p"]["x"]
    assert best["step"] == 5
    assert condition(final, "Ready")["status"] == "True"
    assert condition(final, "Ready")["reason"] == "MaxTrialsReached"
    assert final["observedGeneration"] == 1
    assert final["searchSpaceHash"]

    pods = trial_pods(crd, namespace, "basic")
    assert sorted(p["metadata"]["name"] for p in pods) == [f"basic-t000{i}" for i in range(4)]
    owner = sweep(crd, namespace, "basic")
    for pod in pods:
        refs = pod["metadata"]["ownerReferences"]
        assert refs[0]["uid"] == owner["metadata"]["uid"] and refs[0]["controller"] is True
        assert pod["spec"]["restartPolicy"] == "Never"
    # SweepFinished is posted by the last pass, and kopf posts a sweep's Events in order: once
    # it is there, every earlier pass's Events are too, so the TrialStarted count is final.
    wait_event(crd, namespace, "SweepFinished")
    reasons = event_reasons(crd, namespace)
    assert len(reasons["TrialStarted"]) == 4
    assert "NewBest" in reasons and "SweepFinished" in reasons

    table = crd.kubectl("get", "hps", "-n", namespace)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "PHASE", "BEST", "METRIC", "TRIALS", "RUNNING"]
    assert row.split()[:6] == ["basic", "Succeeded", f"{best['value']:g}", "eval_loss", "4", "0"]


def test_median_pruner_stops_a_bad_trial(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    # Trials 3 and 5 report a flat loss of 10, slowly: the median rule must stop them.
    # Evaluations every 2 steps, as a trainer's evalEvery does: the median rule compares
    # trials at the same evaluation steps.
    env = {
        "STEPS": "8",
        "STEP_SECONDS": "0.15",
        "EVAL_EVERY": "2",
        "BAD_TRIALS": "3,5",
        "BAD_SLOWDOWN": "5",
    }
    manifest = sweep_manifest(
        "prune",
        namespace,
        env=env,
        max_trials=7,
        parallelism=2,
        extra_spec={"earlyStopping": {"name": "median", "minSteps": 2, "startupTrials": 2}},
    )
    crd.create(manifest)
    final = wait_phase(crd, namespace, "prune", "Succeeded", "Failed", timeout=120)
    records = history(final)
    for number in (3, 5):
        assert records[number]["s"] == "Pruned", records[number]
        assert records[number]["st"] < 8, "stopped before its last step"
        # A pruned trial's pod is deleted, not left holding its slot or GPU.
        name = conventions.trial_name("prune", number)
        crd.wait_for_deletion("pods", name, namespace=namespace, timeout=30)
    assert final["trials"]["pruned"] == sum(r["s"] == "Pruned" for r in records.values())
    assert final["best"]["number"] not in (3, 5)
    assert wait_event(crd, namespace, "TrialPruned")


def test_suspend_requeues_and_resume_finishes(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    env = {"STEPS": "40", "STEP_SECONDS": "0.1"}
    crd.create(sweep_manifest("pause", namespace, env=env, max_trials=3, parallelism=2))
    wait_running(crd, namespace, "pause", 2)
    _patch_spec(crd, namespace, "pause", {"suspend": True})
    suspended = wait_phase(crd, namespace, "pause", "Suspended", timeout=30)
    crd.wait_for(
        lambda: (
            not [
                p
                for p in trial_pods(crd, namespace, "pause")
                if p["status"].get("phase") in ("Pending", "Running")
            ]
        ),
        timeout=30,
        message="no live trial pods while suspended",
    )
    records = history(wait_status(crd, namespace, "pause", lambda s: s["trials"]["running"] == 0))
    assert {r["s"] for r in records.values()} == {"Requeued"}
    assert suspended["trials"]["failed"] == 0

    _patch_spec(crd, namespace, "pause", {"suspend": False})
    final = wait_phase(crd, namespace, "pause", "Succeeded", "Failed", timeout=60)
    assert final["phase"] == "Succeeded"
    records = history(final)
    assert sorted(records) == [0, 1, 2], "resumed trials keep their numbers: no new trials"
    assert all(r["s"] == "Succeeded" for r in records.values())
    assert records[0]["rq"] == 1 and records[1]["rq"] == 1


def test_budget_edit_is_applied_and_search_space_edit_refused(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    env = {"STEPS": "20", "STEP_SECONDS": "0.1"}
    crd.create(sweep_manifest("edit", namespace, env=env, max_trials=2, parallelism=1))
    wait_running(crd, namespace, "edit", 1)
    _patch_spec(
        crd,
        namespace,
        "edit",
        {"parameters": [{"name": "x", "type": "float", "min": 0.0, "max": 5.0}]},
    )
    refused = wait_condition(crd, namespace, "edit", "SpecAccepted", "False")
    accepted = condition(refused, "SpecAccepted")
    assert accepted["reason"] == "SearchSpaceChanged"
    assert "spec.parameters" in accepted["message"]
    assert refused["observedGeneration"] == 2
    assert wait_event(crd, namespace, "SearchSpaceChanged")

    # Reverting the search space and raising the budget at once is accepted.
    _patch_spec(
        crd,
        namespace,
        "edit",
        {
            "parameters": [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}],
            "budget": {"maxTrials": 3, "parallelism": 2, "maxFailedTrials": 3},
        },
    )
    final = wait_phase(crd, namespace, "edit", "Succeeded", "Failed", timeout=60)
    assert final["phase"] == "Succeeded"
    assert final["trials"]["succeeded"] == 3
    assert condition(final, "SpecAccepted")["status"] == "True"


def test_bad_sweep_is_invalid_and_does_not_block_others(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    bad = sweep_manifest("bad", namespace, env=FAST)
    bad["spec"]["template"]["container"] = "missing"
    crd.create(bad)
    crd.create(sweep_manifest("good", namespace, env=FAST, max_trials=2, parallelism=2))
    invalid = wait_phase(crd, namespace, "bad", "Invalid", timeout=30)
    accepted = condition(invalid, "SpecAccepted")
    assert accepted["status"] == "False" and accepted["reason"] == "InvalidSpec"
    assert "spec.template.container" in accepted["message"]
    assert "spec.template.container" in " ".join(wait_event(crd, namespace, "InvalidSpec"))
    assert not trial_pods(crd, namespace, "bad")
    assert wait_phase(crd, namespace, "good", "Succeeded", timeout=60)["phase"] == "Succeeded"


def test_trainer_sweep_with_a_misspelled_objective_is_refused_on_accept(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    # Once accepted, every trial trained to its end and then failed with NoObjective.
    typo = sweep_manifest("typo", namespace)
    del typo["spec"]["template"]
    typo["spec"]["objective"] = {"metric": "eval_los", "direction": "minimize"}
    typo["spec"]["parameters"] = [
        {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-3, "log": True}
    ]
    typo["spec"]["trainer"] = {"image": "kubetune-trainer:test", "maxSteps": 10, "evalEvery": 5}
    crd.create(typo)
    invalid = wait_phase(crd, namespace, "typo", "Invalid", timeout=30)
    accepted = condition(invalid, "SpecAccepted")
    assert accepted["status"] == "False" and accepted["reason"] == "InvalidSpec"
    assert "spec.objective.metric" in accepted["message"]
    assert "did you mean eval_loss?" in accepted["message"]
    wait_event(crd, namespace, "InvalidSpec")
    warned = [
        e
        for e in events(crd, namespace)
        if e.get("reason") == "InvalidSpec" and "did you mean eval_loss?" in e.get("message", "")
    ]
    assert warned and all(e["type"] == "Warning" for e in warned)
    assert not trial_pods(crd, namespace, "typo")


def test_failures_are_recorded_and_disruptions_retried(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    failing = sweep_manifest(
        "fails", namespace, env={**FAST, "FAIL_AT": "2"}, max_trials=6, parallelism=1
    )
    failing["spec"]["budget"]["maxFailedTrials"] = 1
    crd.create(failing)
    final = wait_phase(crd, namespace, "fails", "Failed", "Succeeded", timeout=60)
    assert final["phase"] == "Failed"
    assert condition(final, "Ready")["reason"] == "TooManyFailures"
    reasons = [r["r"] for r in history(final).values() if r["s"] == "Failed"]
    assert len(reasons) == 2 and all("deliberate failure at step 2" in r for r in reasons)
    assert wait_event(crd, namespace, "TrialFailed")

    # Eviction and OOM on a long trial: the first is retried, the second is a failure.
    slow = {"STEPS": "30", "STEP_SECONDS": "0.1"}
    crd.create(sweep_manifest("disrupt", namespace, env=slow, max_trials=2, parallelism=1))
    pod = conventions.trial_name("disrupt", 0)
    crd.wait_for_pod_phase(namespace, pod, "Running", timeout=30)
    crd.evict_pod(namespace, pod)
    requeued = wait_status(
        crd, namespace, "disrupt", lambda s: history(s).get(0, {}).get("rq") == 1, what="requeue"
    )
    assert requeued["trials"]["failed"] == 0
    crd.wait_for(
        lambda: (
            (crd.get("pods", pod, namespace=namespace) or {})
            .get("metadata", {})
            .get("annotations", {})
            .get("kubetune.dev/attempt")
            == "2"
        ),
        timeout=30,
        message="second attempt of the evicted trial",
    )
    crd.wait_for_pod_phase(namespace, pod, "Running", timeout=30)
    crd.oom_kill(namespace, pod)
    final = wait_status(
        crd, namespace, "disrupt", lambda s: history(s).get(0, {}).get("s") == "Failed"
    )
    assert history(final)[0]["r"] == "OOMKilled"


def test_node_loss_requeues_the_trial(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.add_node("spot-1", gpus=1)
    crd.kubectl("label", "node", "spot-1", "pool=spot", check=True)
    manifest = sweep_manifest(
        "spot", namespace, env={"STEPS": "30", "STEP_SECONDS": "0.1"}, max_trials=1, parallelism=1
    )
    manifest["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "spot"}
    crd.create(manifest)
    pod = conventions.trial_name("spot", 0)
    crd.wait_for_pod_phase(namespace, pod, "Running", timeout=30)
    crd.lose_node("spot-1")
    requeued = wait_status(
        crd, namespace, "spot", lambda s: history(s).get(0, {}).get("rq") == 1, what="requeue"
    )
    assert "NodeLost" in history(requeued)[0]["r"]
    crd.add_node("spot-2", gpus=1)
    crd.kubectl("label", "node", "spot-2", "pool=spot", check=True)
    final = wait_phase(crd, namespace, "spot", "Succeeded", "Failed", timeout=60)
    assert final["phase"] == "Succeeded" and final["trials"]["failed"] == 0


def test_deleting_a_sweep_removes_its_pods(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    env = {"STEPS": "100", "STEP_SECONDS": "0.1"}
    crd.create(sweep_manifest("gone", namespace, env=env, max_trials=2, parallelism=2))
    wait_running(crd, namespace, "gone", 2)
    result = crd.kubectl("delete", "hps", "gone", "-n", namespace, "--wait=false")
    assert result.returncode == 0, result.stderr
    crd.wait_for(
        lambda: (
            not trial_pods(crd, namespace, "gone")
            and crd.get(PLURAL, "gone", namespace=namespace, group=API_GROUP) is None
        ),
        timeout=30,
        message="sweep and its pods deleted",
    )
