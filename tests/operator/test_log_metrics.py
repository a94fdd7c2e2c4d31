"""spec.metrics.logs on the simulated cluster: trials that only print are read via pods/log."""

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune.metrics import MetricsUnavailable
from kubetune.operator.kube import ApiError, KubeClient
from kubetune.operator.runtime import pod_log_stream
from tests.cluster.cluster import Cluster

from .helpers import condition, history, wait_event, wait_phase
from .runner import InProcessOperator, SubprocessOperator, sweep_manifest

pytestmark = pytest.mark.slow
LOG_TRIAL = Path(__file__).resolve().parents[1] / "local" / "log_trial.py"
GOOD = (0.25 - 0.3) ** 2 + 0.1


def log_manifest(name: str, namespace: str, args: list[str], **spec: Any) -> dict[str, Any]:
    manifest = sweep_manifest(name, namespace, script=LOG_TRIAL, extra_spec=spec)
    body = manifest["spec"]
    body["objective"] = {"metric": "loss", "direction": "minimize"}
    body["parameters"] = [{"name": "x", "type": "categorical", "values": [0.25]}]
    body["metrics"]["logs"] = {}
    body["template"]["spec"]["containers"][0]["args"] = ["--x", "${params.x}", *args]
    return manifest


def test_trials_that_only_print_succeed_and_a_bad_one_is_pruned(
    operator: InProcessOperator, crd: Cluster, namespace: str
) -> None:
    bad = conventions.trial_name("logs", 2)
    manifest = log_manifest(
        "logs",
        namespace,
        ["--epochs", "20", "--sleep", "0.2", "--bad", bad],
        budget={"maxTrials": 3, "parallelism": 1, "maxFailedTrials": 0},
        earlyStopping={"name": "median", "minSteps": 2, "startupTrials": 2},
    )
    crd.create(manifest)
    final = wait_phase(crd, namespace, "logs", "Succeeded", "Failed", timeout=120)
    records = history(final)
    assert [records[n]["s"] for n in (0, 1, 2)] == ["Succeeded", "Succeeded", "Pruned"], records
    for number in (0, 1):
        # The final value is the last line of the ended pod's log: epoch 19 is step 20.
        assert records[number]["v"] == [pytest.approx(GOOD, abs=1e-6)]
        assert records[number]["st"] == 20
        assert len(records[number]["iv"]) >= 2  # intermediate values fed the pruner
    assert records[2]["st"] < 20, "stopped before its last epoch"
    assert final["best"]["value"] == pytest.approx(GOOD, abs=1e-6)
    assert condition(final, "MetricsAvailable")["status"] == "True"
    assert wait_event(crd, namespace, "TrialPruned")


def test_a_restarted_operator_rereads_the_logs_and_counts_nothing_twice(
    crd: Cluster, namespace: str, tmp_path: Path
) -> None:
    manifest = log_manifest(
        "relog",
        namespace,
        ["--epochs", "15", "--sleep", "0.2"],
        budget={"maxTrials": 3, "parallelism": 1},
    )
    crd.create(manifest)
    operator = SubprocessOperator(crd.env(), tmp_path / "operator.log").start()
    try:
        for pause in (2.0, 2.5):  # mid-trial: its log is read again from the first byte
            time.sleep(pause)
            operator.kill()
            time.sleep(0.5)
            operator.start()
        final = wait_phase(crd, namespace, "relog", "Succeeded", "Failed", timeout=120)
    finally:
        operator.stop()
    records = history(final)
    assert sorted(records) == [0, 1, 2]
    for record in records.values():
        assert record["s"] == "Succeeded" and record["st"] == 15, record
        assert record["v"] == [pytest.approx(GOOD, abs=1e-6)]
        steps = [step for step, _ in record.get("iv") or []]
        assert steps == sorted(set(steps)), f"a step counted twice: {steps}"


def test_the_log_of_a_pod_that_is_not_there(crd: Cluster, namespace: str) -> None:
    async def read() -> None:
        kube = KubeClient.from_environment(str(crd.kubeconfig))
        try:
            with pytest.raises(ApiError) as refused:
                async for _ in kube.stream_pod_log(namespace, "no-such-pod", "trial"):
                    pass
            assert refused.value.status == 404
            # The source sees it as one unreadable trial, not a bug.
            with pytest.raises(MetricsUnavailable, match="pods/log of no-such-pod"):
                async for _ in pod_log_stream(kube)(namespace, "no-such-pod", None):
                    pass
        finally:
            await kube.aclose()

    asyncio.run(read())
