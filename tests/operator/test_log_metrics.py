"""spec.metrics.logs on the simulated cluster: trials that only print are read via pods/log."""

from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from tests.cluster.cluster import Cluster

from .helpers import condition, event_reasons, history, wait_phase
from .runner import InProcessOperator, sweep_manifest

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
    assert "TrialPruned" in event_reasons(crd, namespace)
