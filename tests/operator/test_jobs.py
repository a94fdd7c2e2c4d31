"""Trials as batch/v1 Jobs (spec.workload) on the test cluster: the operator creates one Job
per trial (the cluster's Job controller stand-in makes its pod), judges the trial by that
pod as it judges any trial pod, and deletes the Job with its pods when a trial is pruned."""

from __future__ import annotations

import itertools
from typing import Any

from kubetune import conventions
from kubetune.operator.pod_state import QUEUE_PREEMPTED
from tests.cluster.cluster import Cluster

from .helpers import condition, history, trial_pods, wait_phase, wait_status
from .runner import InProcessOperator, sweep_manifest

FAST = {"STEPS": "5", "STEP_SECONDS": "0.1"}


def job_sweep(name: str, namespace: str, env: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    """sweep_manifest's template sweep, its pod template wrapped in a batch/v1 Job."""
    manifest = sweep_manifest(name, namespace, env=env, **kwargs)
    template = manifest["spec"].pop("template")
    manifest["spec"]["workload"] = {
        "object": {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"labels": {"team": "${sweep.name}"}},
            "spec": {"backoffLimit": 3, "template": template},
        },
        "primaryPod": {"container": "trial"},
    }
    return manifest


def _jobs(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.list_objects(
        "jobs", namespace, group="batch", label_selector=f"{conventions.LABEL_SWEEP}={name}"
    )


def test_job_sweep_runs_to_success(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    crd.create(job_sweep("jobs", namespace, FAST, max_trials=3, parallelism=2))
    final = wait_phase(crd, namespace, "jobs", "Succeeded", "Failed", timeout=90)
    assert final["phase"] == "Succeeded", final
    assert final["trials"]["succeeded"] == 3
    assert all(r["s"] == "Succeeded" and r["v"] for r in history(final).values())
    jobs = _jobs(crd, namespace, "jobs")
    assert sorted(j["metadata"]["name"] for j in jobs) == [
        conventions.trial_name("jobs", n) for n in range(3)
    ]
    sweep_uid = crd.get("hyperparametersweeps", "jobs", namespace, group="kubetune.dev")
    assert sweep_uid is not None
    for found in jobs:
        (owner,) = found["metadata"]["ownerReferences"]
        assert owner["uid"] == sweep_uid["metadata"]["uid"]
        assert found["metadata"]["labels"]["team"] == "jobs"
        assert found["spec"]["backoffLimit"] == 0  # a trial runs once
        assert any(c["type"] == "Complete" for c in found["status"]["conditions"])
    pods = trial_pods(crd, namespace, "jobs")
    assert len(pods) == 3
    # The Job controller made them, not the operator.
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "Job" for p in pods)


def test_job_sweep_whose_trials_fail_ends_failed(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    manifest = job_sweep("jobfail", namespace, {**FAST, "FAIL_AT": "2"}, max_trials=4)
    manifest["spec"]["budget"]["maxFailedTrials"] = 1
    manifest["spec"]["budget"]["parallelism"] = 1
    crd.create(manifest)
    final = wait_phase(crd, namespace, "jobfail", "Failed", "Succeeded", timeout=90)
    assert final["phase"] == "Failed"
    assert condition(final, "Ready")["reason"] == "TooManyFailures"
    failed = [r for r in history(final).values() if r["s"] == "Failed"]
    assert len(failed) == 2
    assert all("deliberate failure at step 2" in r["r"] for r in failed)
    # Each failed trial ran exactly once: backoffLimit 0, whatever the user wrote.
    assert len(trial_pods(crd, namespace, "jobfail")) == 2


def test_pruned_trial_job_is_deleted_with_its_pod(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    env = {
        "STEPS": "8",
        "STEP_SECONDS": "0.15",
        "EVAL_EVERY": "2",
        "BAD_TRIALS": "2",
        "BAD_SLOWDOWN": "5",
    }
    manifest = job_sweep("jobprune", namespace, env, max_trials=3, parallelism=1)
    manifest["spec"]["earlyStopping"] = {"name": "median", "minSteps": 2, "startupTrials": 2}
    crd.create(manifest)
    final = wait_phase(crd, namespace, "jobprune", "Succeeded", "Failed", timeout=120)
    records = history(final)
    assert records[2]["s"] == "Pruned", records[2]
    name = conventions.trial_name("jobprune", 2)
    crd.wait_for_deletion("jobs", name, namespace=namespace, group="batch", timeout=30)
    left = [
        p for p in trial_pods(crd, namespace, "jobprune") if p["metadata"]["name"].startswith(name)
    ]
    assert left == []


def test_evicted_job_pod_reruns_the_trial_as_a_new_job(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    slow = {"STEPS": "30", "STEP_SECONDS": "0.1"}
    crd.create(job_sweep("jobevict", namespace, slow, max_trials=1, parallelism=1))
    trial = conventions.trial_name("jobevict", 0)

    def running_pod(attempt: str) -> str | None:
        for pod in trial_pods(crd, namespace, "jobevict"):
            notes = pod["metadata"].get("annotations") or {}
            phase = (pod.get("status") or {}).get("phase")
            if notes.get("kubetune.dev/attempt") == attempt and phase == "Running":
                return str(pod["metadata"]["name"])
        return None

    first = crd.wait_for(lambda: running_pod("1"), timeout=30, message="first attempt running")
    crd.evict_pod(namespace, first)
    wait_status(
        crd, namespace, "jobevict", lambda s: history(s).get(0, {}).get("rq") == 1, what="requeue"
    )
    crd.wait_for(lambda: running_pod("2"), timeout=60, message="second attempt running")
    final = wait_phase(crd, namespace, "jobevict", "Succeeded", "Failed", timeout=90)
    assert final["phase"] == "Succeeded"
    assert history(final)[0]["s"] == "Succeeded"
    (job,) = _jobs(crd, namespace, "jobevict")
    assert job["metadata"]["name"] == trial
    assert job["metadata"]["annotations"]["kubetune.dev/attempt"] == "2"


def _queued_gpu_sweep(
    name: str, namespace: str, env: dict[str, str], trials: int
) -> dict[str, Any]:
    """A Job sweep on the gpu-queue whose trials (all at once) each ask for one GPU."""
    manifest = job_sweep(name, namespace, env, max_trials=trials, parallelism=trials)
    manifest["spec"]["queueName"] = "gpu-queue"
    pod_spec = manifest["spec"]["workload"]["object"]["spec"]["template"]["spec"]
    pod_spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    return manifest


def test_a_running_job_trial_that_kueue_evicts_is_preempted_and_rerun(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    """Kueue suspends the admitted Job again (preemption): its pod is deleted, and kubetune
    names the requeue Preempted (not PodDeleted: nobody deleted the pod by hand) and reruns
    the trial as attempt 2."""
    crd.set_kueue_quotas({"gpu-queue": 1})
    try:
        slow = {"STEPS": "30", "STEP_SECONDS": "0.1"}
        crd.create(_queued_gpu_sweep("jobkq", namespace, slow, trials=1))
        wait_status(
            crd,
            namespace,
            "jobkq",
            lambda s: (s.get("trials") or {}).get("running") == 1,
            timeout=30,
            what="trial running",
        )
        # The preempting workload holds the GPU (the stand-in has no priorities): no quota
        # left, so the evicted Job is not admitted again at once.
        crd.set_kueue_quotas({"gpu-queue": 0})
        crd.kueue_evict("jobs", namespace, conventions.trial_name("jobkq", 0))
        current = wait_status(
            crd, namespace, "jobkq", lambda s: history(s).get(0, {}).get("rq") == 1, what="requeue"
        )
        assert history(current)[0]["r"] == QUEUE_PREEMPTED, history(current)
        crd.set_kueue_quotas({"gpu-queue": 1})
        final = wait_phase(crd, namespace, "jobkq", "Succeeded", "Failed", timeout=90)
    finally:
        crd.set_kueue_quotas({})
    assert final["phase"] == "Succeeded", history(final)
    record = history(final)[0]
    assert (record["s"], record["rq"]) == ("Succeeded", 1), record


def test_job_sweep_over_its_kueue_quota_queues_trials_and_runs_them_all(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    """Quota for 1 GPU, 3 trials of 1 GPU in parallel: one runs, two wait Queued, none is
    lost or failed, and all succeed in turn."""
    crd.set_kueue_quotas({"gpu-queue": 1})
    try:
        slow = {"STEPS": "10", "STEP_SECONDS": "0.1"}
        crd.create(_queued_gpu_sweep("kq", namespace, slow, trials=3))
        seen: list[dict[str, int]] = []

        def watch(current: dict[str, Any]) -> bool:
            seen.append(dict(current.get("trials") or {}))
            return current.get("phase") in ("Succeeded", "Failed")

        queued = wait_status(
            crd,
            namespace,
            "kq",
            lambda s: (s.get("trials") or {}).get("queued") == 2,
            timeout=30,
            what="two trials queued",
        )
        started = condition(queued, "TrialsStarted")
        assert (started["status"], started["reason"]) == ("False", "Queued"), started
        assert "queue gpu-queue" in started["message"]
        final = wait_status(crd, namespace, "kq", watch, timeout=120, what="sweep finished")
        peak = crd.kueue.peak["gpu-queue"]
    finally:
        crd.set_kueue_quotas({})
    assert final["phase"] == "Succeeded", final
    trials = final["trials"]
    assert (trials["total"], trials["succeeded"], trials["failed"]) == (3, 3, 0), trials
    assert all(r["s"] == "Succeeded" and not r.get("rq") for r in history(final).values())
    assert max(s.get("running", 0) for s in seen) == 1
    assert max(s.get("queued", 0) for s in seen) >= 1
    assert condition(final, "TrialsStarted")["status"] == "True"
    # Each trial ran once, one at a time: every pod started after the previous one ended.
    pods = trial_pods(crd, namespace, "kq")
    assert len(pods) == 3
    spans = sorted(
        (p["status"]["startTime"], p["status"]["containerStatuses"][0]["state"]["terminated"])
        for p in pods
    )
    for (_, earlier), (later_start, _) in itertools.pairwise(spans):
        assert later_start >= earlier["finishedAt"], spans
    assert peak == 1
