"""End to end with the real trainer: `kubectl apply -f examples/tiny-sweep.yaml` runs tiny
LoRA fine-tuning trials as pods, Prometheus scrapes them through pod discovery, the sweep
succeeds with its best trial in status, `kubectl get hps` and `kubetune best` show it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubetune.cli import main as kubetune_main
from kubetune.operator.config import OperatorConfig
from kubetune_trainer.config import default_cache_dir
from tests.cluster.cluster import Cluster
from tests.cluster.prometheus import Prometheus

from .helpers import condition, history, trial_pods, wait_phase
from .runner import InProcessOperator

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tiny-sweep.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_operator(crd: Cluster, prometheus: Prometheus) -> Iterator[InProcessOperator]:
    # Like a node-level model cache: trial pods reuse the locally built tiny model.
    assert crd.kubelet is not None
    crd.kubelet.extra_env["KUBETUNE_CACHE_DIR"] = str(default_cache_dir(os.environ))
    config = OperatorConfig(
        metrics_port=None,
        idle_interval=5.0,
        default_image="kubetune-trainer:test",
        default_prometheus_url=prometheus.url,
    )
    with InProcessOperator(crd.kubeconfig, config) as running:
        yield running


def test_tiny_sweep_with_the_real_trainer(
    real_operator: InProcessOperator,
    crd: Cluster,
    namespace: str,
    prometheus: Prometheus,
    capsys: pytest.CaptureFixture[str],
) -> None:
    applied = crd.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    assert applied.returncode == 0, applied.stderr
    final = wait_phase(crd, namespace, "tiny-sweep", "Succeeded", "Failed", timeout=300)
    assert final["phase"] == "Succeeded", final.get("history")
    records = history(final)
    assert sorted(records) == [0, 1]
    assert {r["s"] for r in records.values()} <= {"Succeeded", "Pruned"}
    best = final["best"]
    assert set(best["parameters"]) == {"learning_rate", "lora_r"}
    assert best["step"] == 8 and 0 < best["value"] < 10
    assert condition(final, "MetricsAvailable")["status"] == "True"

    pod = trial_pods(crd, namespace, "tiny-sweep")[0]
    assert pod["spec"]["containers"][0]["image"] == "kubetune-trainer:test"
    # Finished pods are no longer scraped (their series went stale): look back in time.
    selector = f'kubetune_trial_eval_loss{{namespace="{namespace}"}}'
    series = prometheus.query(f"last_over_time({selector}[10m])")
    assert {s["metric"]["sweep"] for s in series} == {"tiny-sweep"}

    table = crd.kubectl("get", "hps", "-n", namespace).stdout.splitlines()
    assert table[1].split()[:5] == [
        "tiny-sweep",
        "Succeeded",
        f"{best['value']:g}",
        "eval_loss",
        "2",
    ]

    os.environ["KUBECONFIG"] = str(crd.kubeconfig)
    capsys.readouterr()
    assert kubetune_main(["best", "tiny-sweep", "-n", namespace]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"# Best trial of tiny-sweep: {best['trial']}")
    args = yaml.safe_load(printed)["trainer"]["args"]
    assert args["learning_rate"] == best["parameters"]["learning_rate"]
    assert args["lora_r"] == best["parameters"]["lora_r"]
    assert args["per_device_train_batch_size"] == 4  # the sweep's fixed args come along

    assert kubetune_main(["best", "missing", "-n", namespace]) == 1
    assert "not found" in capsys.readouterr().err
