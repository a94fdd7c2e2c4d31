"""Restart safety: the operator killed (SIGKILL) and restarted mid-sweep, and an API server
failing 10% of requests, still give every trial exactly one run and every result."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

from kubetune import conventions
from tests.cluster.cluster import Cluster
from tests.cluster.faults import Faults

from .helpers import history, trial_pods, wait_phase
from .runner import SubprocessOperator, sweep_manifest


def _assert_each_trial_ran_once(
    cluster: Cluster, namespace: str, name: str, run_log: Path, trials: int
) -> None:
    final = wait_phase(cluster, namespace, name, "Succeeded", "Failed", timeout=120)
    assert final["phase"] == "Succeeded", final
    records = history(final)
    assert sorted(records) == list(range(trials)), "no trial lost, none added"
    assert all(r["s"] == "Succeeded" and r["v"] for r in records.values()), records
    assert not [r for r in records.values() if r.get("rq")], "nothing was rerun"
    runs = Counter(run_log.read_text().split())
    expected = {conventions.trial_name(name, n): 1 for n in range(trials)}
    assert dict(runs) == expected, f"trial processes started: {runs}"
    pods = trial_pods(cluster, namespace, name)
    assert len(pods) == trials
    assert {p["metadata"]["annotations"]["kubetune.dev/attempt"] for p in pods} == {"1"}


def test_killed_and_restarted_operator_loses_and_repeats_nothing(
    crd: Cluster, namespace: str, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    env = {"STEPS": "8", "STEP_SECONDS": "0.1", "RUN_LOG": str(run_log)}
    crd.create(sweep_manifest("restart", namespace, env=env, max_trials=10, parallelism=3))
    operator = SubprocessOperator(crd.env(), tmp_path / "operator.log").start()
    rng = random.Random(5)
    try:
        # Kill it at several points: while trials start, run, and finish.
        for _ in range(5):
            time.sleep(rng.uniform(0.8, 2.5))
            operator.kill()
            time.sleep(rng.uniform(0.0, 1.5))  # trials may end while no operator runs
            operator.start()
        _assert_each_trial_ran_once(crd, namespace, "restart", run_log, 10)
    finally:
        operator.stop()


def test_ten_percent_api_errors_change_nothing(
    crd: Cluster, namespace: str, faults: Faults, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    env = {"STEPS": "5", "STEP_SECONDS": "0.1", "RUN_LOG": str(run_log)}
    operator = SubprocessOperator(crd.env(), tmp_path / "operator.log").start()
    try:
        time.sleep(2)  # let it list and watch before the faults start
        faults.error_ratio = 0.1
        crd.create(sweep_manifest("flaky", namespace, env=env, max_trials=8, parallelism=2))
        _assert_each_trial_ran_once(crd, namespace, "flaky", run_log, 8)
        seen = faults.count()
        assert seen > 50, f"the fault injection saw too few requests ({seen})"
    finally:
        faults.reset()
        operator.stop()
