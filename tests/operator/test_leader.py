"""One operator at a time: two started together share the work of none, and the one left
takes over when the leader dies; a leader whose lease is taken stops at once."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client

from kubetune import conventions
from kubetune.operator.main import LOST_LEASE_EXIT
from tests.cluster.cluster import Cluster

from .helpers import history, trial_pods, wait_phase, wait_status
from .runner import SubprocessOperator, sweep_manifest

LEASE_NAMESPACE = "kube-system"


def _wait_log(operator: SubprocessOperator, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in operator.log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{text!r} not in {operator.log}")


def test_two_operators_run_each_trial_once_and_the_survivor_finishes(
    crd: Cluster, namespace: str, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    env = {"STEPS": "8", "STEP_SECONDS": "0.1", "RUN_LOG": str(run_log)}
    lease_env = {conventions.ENV_OPERATOR_NAMESPACE: LEASE_NAMESPACE}
    pair = [
        SubprocessOperator(crd.env(), tmp_path / f"operator-{i}.log", extra_env=lease_env)
        for i in range(2)
    ]
    for operator in pair:
        operator.start()
    try:
        crd.create(sweep_manifest("duo", namespace, env=env, max_trials=10, parallelism=3))
        wait_status(
            crd,
            namespace,
            "duo",
            lambda s: s.get("trials", {}).get("succeeded", 0) >= 3,
            timeout=90,
            what="3 trials succeeded",
        )
        leaders = [op for op in pair if "holding lease" in op.log.read_text(errors="replace")]
        assert len(leaders) == 1, "exactly one operator holds the lease"
        leader = leaders[0]
        standby = pair[1 - pair.index(leader)]
        assert "waiting (no sweep is touched meanwhile)" in standby.log.read_text()
        leader.kill()
        _wait_log(standby, "holding lease", timeout=30)

        final = wait_phase(crd, namespace, "duo", "Succeeded", "Failed", timeout=120)
        assert final["phase"] == "Succeeded", final
        records = history(final)
        assert sorted(records) == list(range(10)), "no history record lost, none added"
        assert all(r["s"] == "Succeeded" and r["v"] for r in records.values()), records
        runs = Counter(run_log.read_text().split())
        assert dict(runs) == {conventions.trial_name("duo", n): 1 for n in range(10)}, runs
        pods = trial_pods(crd, namespace, "duo")
        assert len(pods) == 10
        assert {p["metadata"]["annotations"]["kubetune.dev/attempt"] for p in pods} == {"1"}
        leases: Any = client.CoordinationV1Api(crd.api_client())
        lease = leases.read_namespaced_lease(conventions.OPERATOR_LEASE, LEASE_NAMESPACE)
        assert lease.spec.lease_transitions >= 1
    finally:
        for operator in pair:
            operator.stop()


def test_a_leader_whose_lease_is_taken_stops_at_once(crd: Cluster, tmp_path: Path) -> None:
    operator = SubprocessOperator(
        crd.env(),
        tmp_path / "operator.log",
        extra_env={conventions.ENV_OPERATOR_NAMESPACE: "default"},
    ).start()
    try:
        _wait_log(operator, "holding lease")
        leases: Any = client.CoordinationV1Api(crd.api_client())
        lease = leases.read_namespaced_lease(conventions.OPERATOR_LEASE, "default")
        lease.spec.holder_identity = "someone-else"
        leases.replace_namespaced_lease(conventions.OPERATOR_LEASE, "default", lease)
        assert operator.proc is not None
        assert operator.proc.wait(10) == LOST_LEASE_EXIT
        assert "lost lease default/kubetune-operator (now held by 'someone-else')" in (
            operator.log.read_text()
        )
    finally:
        operator.stop()
