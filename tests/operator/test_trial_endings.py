"""Trials on the test cluster finish, fail or wait for the right reason: sidecars, kills with
no disruption behind them, Secrets that arrive late, and trials that cannot be scheduled."""

from __future__ import annotations

import json
import threading
import time

from kubetune import PLURAL
from tests.cluster.cluster import Cluster

from .helpers import (
    condition,
    event_reasons,
    history,
    trial_pods,
    wait_event,
    wait_phase,
    wait_status,
)
from .runner import InProcessOperator, sweep_manifest

FAST = {"STEPS": "4", "STEP_SECONDS": "0.1"}


def test_a_sidecar_does_not_keep_a_finished_trial_running(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    manifest = sweep_manifest("sidecar", namespace, env=FAST, max_trials=2, parallelism=2)
    template = manifest["spec"]["template"]
    template["container"] = "trial"
    template["spec"]["containers"].insert(
        0,
        {
            "name": "log-shipper",
            "image": "busybox:1.36",
            "command": ["python", "-c", "import time; time.sleep(3600)"],
        },
    )
    manifest["spec"]["budget"]["trialTimeout"] = "5m"
    crd.create(manifest)
    final = wait_phase(crd, namespace, "sidecar", "Succeeded", "Failed", timeout=60)
    assert final["phase"] == "Succeeded", final.get("history")
    assert {r["s"] for r in history(final).values()} == {"Succeeded"}
    crd.wait_for(
        lambda: all(
            p.get("metadata", {}).get("deletionTimestamp") or p["status"].get("phase") != "Running"
            for p in trial_pods(crd, namespace, "sidecar")
        ),
        timeout=30,
        message="the finished trials' pods to stop, sidecar and all",
    )


def test_a_kill_without_a_disruption_fails_the_trial_once(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    env = {**FAST, "SIGKILL_AT": "2"}
    crd.create(sweep_manifest("killed", namespace, env=env, max_trials=1, parallelism=1))
    final = wait_phase(crd, namespace, "killed", "Succeeded", "Failed", timeout=60)
    record = history(final)[0]
    assert (record["s"], record["r"].split(":")[0]) == ("Failed", "Killed"), record
    assert "rq" not in record, "a kill with no disruption behind it is not rerun"


def test_a_secret_created_late_does_not_fail_the_trial(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    manifest = sweep_manifest("late-secret", namespace, env=FAST, max_trials=1, parallelism=1)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["env"].append(
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "late", "key": "token"}}}
    )
    crd.create(manifest)
    wait_status(
        crd,
        namespace,
        "late-secret",
        lambda s: condition(s, "TrialsStarted").get("reason") == "CreateContainerConfigError",
        what="TrialsStarted=False while the Secret is missing",
    )

    def create_secret() -> None:
        time.sleep(1.0)
        crd.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "late", "namespace": namespace},
                "stringData": {"token": "t0ken"},
            }
        )

    thread = threading.Thread(target=create_secret)
    thread.start()
    final = wait_phase(crd, namespace, "late-secret", "Succeeded", "Failed", timeout=60)
    thread.join()
    assert final["phase"] == "Succeeded", final.get("history")
    assert condition(final, "TrialsStarted")["status"] == "True"


def test_unschedulable_trials_are_a_sweep_condition(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    manifest = sweep_manifest("no-gpu", namespace, env=FAST, max_trials=1, parallelism=1)
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"nvidia.com/gpu": 64}}
    crd.create(manifest)
    status = wait_status(
        crd,
        namespace,
        "no-gpu",
        lambda s: condition(s, "TrialsStarted").get("status") == "False",
        what="TrialsStarted=False",
    )
    started = condition(status, "TrialsStarted")
    assert started["reason"] == "Unschedulable"
    assert "no-gpu-t0000" in started["message"] and "nvidia.com/gpu" in started["message"]
    # Absence needs a later Event first: the operator posts a pass's Events after writing its
    # status, and kopf posts a sweep's Events in order. A refused search-space edit makes a
    # later pass post SearchSpaceChanged; once it is there, a TrialFailed from the pass that
    # reported Unschedulable would be too.
    edit = {"spec": {"parameters": [{"name": "x", "type": "float", "min": 0.0, "max": 5.0}]}}
    patched = crd.kubectl(
        "patch", PLURAL, "no-gpu", "-n", namespace, "--type=merge", "-p", json.dumps(edit)
    )
    assert patched.returncode == 0, patched.stderr
    wait_event(crd, namespace, "SearchSpaceChanged")
    assert "TrialFailed" not in event_reasons(crd, namespace)
    crd.delete("hyperparametersweeps", "no-gpu", namespace=namespace, group="kubetune.dev")
