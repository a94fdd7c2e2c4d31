"""Status written by someone else (another operator, a hand edit) is never overwritten with
what this operator decided before it: the write is conditional on the resourceVersion the
decision was made from, and a conflict rebuilds the sweep's state from the stored status."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from kubetune import API_GROUP, API_VERSION, PLURAL, conventions
from kubetune.operator.config import OperatorConfig
from kubetune.operator.effects import Event
from kubetune.operator.engine_pool import EnginePool
from kubetune.operator.kube import KubeClient
from kubetune.operator.pod_state import view
from kubetune.operator.runtime import SweepRuntime
from tests.cluster.cluster import Cluster

from .helpers import history, sweep
from .runner import sweep_manifest

# The engine threads the operator would share among its sweeps (handlers.configure makes it).
ENGINE = EnginePool(1)


def _other_writer_finishes_trial_0(cluster: Cluster, namespace: str, name: str) -> None:
    """What a second operator would write: trial 0 ended, with a value this one never saw."""
    stored = sweep(cluster, namespace, name)["status"]
    record = dict(stored["history"][0], s="Succeeded", v=[0.123], st=8)
    custom: Any = client.CustomObjectsApi(cluster.api_client())
    custom.patch_namespaced_custom_object_status(
        API_GROUP, API_VERSION, namespace, PLURAL, name, {"status": {"history": [record]}}
    )


async def _pass(runtime: SweepRuntime, body: dict[str, Any], pods: list[Any]) -> None:
    events: list[Event] = []
    await runtime.reconcile_once(body, [view(p) for p in pods], events.append, lambda m: None)


def _runtime(cluster: Cluster, namespace: str, name: str) -> tuple[SweepRuntime, KubeClient]:
    kube = KubeClient.from_environment(str(cluster.kubeconfig))
    uid = sweep(cluster, namespace, name)["metadata"]["uid"]
    config = OperatorConfig(metrics_port=None)
    return SweepRuntime(namespace, name, uid, kube, config, ENGINE), kube


def _trial_pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.list_objects(
        "pods", namespace, label_selector=f"{conventions.LABEL_SWEEP}={name}"
    )


def test_a_pass_decided_on_a_stale_status_is_redone_from_the_stored_one(
    crd: Cluster, namespace: str
) -> None:
    env = {"STEPS": "200", "STEP_SECONDS": "0.1"}
    crd.create(sweep_manifest("race", namespace, env=env, max_trials=3, parallelism=1))
    stale = sweep(crd, namespace, "race")
    runtime, kube = _runtime(crd, namespace, "race")
    try:
        crd.run(_pass(runtime, stale, []))  # starts trial 0, records it as Pending
        assert history(sweep(crd, namespace, "race")["status"])[0]["s"] == "Pending"
        pod = crd.wait_for_pod_phase(namespace, conventions.trial_name("race", 0), "Running")
        _other_writer_finishes_trial_0(crd, namespace, "race")
        # This pass sees trial 0's pod running and has a status to write, decided from the
        # state before the other writer's: the write conflicts and the pass is redone.
        crd.run(_pass(runtime, stale, [pod]))
        records = history(sweep(crd, namespace, "race")["status"])
        assert records[0]["s"] == "Succeeded" and records[0]["v"] == [0.123], records
        assert records[1]["s"] == "Pending", "the rebuilt engine went on to the next trial"
    finally:
        crd.run(runtime.close())
        crd.run(kube.aclose())
        for pod in _trial_pods(crd, namespace, "race"):
            crd.delete("pods", pod["metadata"]["name"], namespace, grace_period=0)


def test_a_newer_body_with_someone_elses_status_rebuilds_before_deciding(
    crd: Cluster, namespace: str
) -> None:
    env = {"STEPS": "200", "STEP_SECONDS": "0.1"}
    crd.create(sweep_manifest("edit", namespace, env=env, max_trials=3, parallelism=1))
    runtime, kube = _runtime(crd, namespace, "edit")
    try:
        crd.run(_pass(runtime, sweep(crd, namespace, "edit"), []))
        pod = crd.wait_for_pod_phase(namespace, conventions.trial_name("edit", 0), "Running")
        _other_writer_finishes_trial_0(crd, namespace, "edit")
        crd.run(_pass(runtime, sweep(crd, namespace, "edit"), [pod]))
        records = history(sweep(crd, namespace, "edit")["status"])
        assert records[0]["s"] == "Succeeded" and records[0]["v"] == [0.123], records
    finally:
        crd.run(runtime.close())
        crd.run(kube.aclose())
        for pod in _trial_pods(crd, namespace, "edit"):
            crd.delete("pods", pod["metadata"]["name"], namespace, grace_period=0)
