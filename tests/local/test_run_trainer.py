"""`kubetune run` with the REAL built-in trainer on the tiny model (torch on CPU, few steps)."""

import csv
import json
from pathlib import Path

import pytest
import yaml

from kubetune.trial_result import TrialResult
from tests.local.cli import kubetune, read_state

pytestmark = pytest.mark.slow


def trainer_sweep() -> dict[str, object]:
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "tiny-lora"},
        "spec": {
            "objective": {"metric": "eval_loss", "direction": "minimize"},
            "algorithm": {"name": "random", "seed": 11},
            "budget": {"maxTrials": 2, "parallelism": 2, "trialTimeout": "8m"},
            "parameters": [
                {"name": "learning_rate", "type": "float", "min": 1e-3, "max": 1e-2, "log": True},
                {"name": "lora_r", "type": "categorical", "values": [2, 4]},
            ],
            "trainer": {
                "model": "tiny",
                "dataset": {"path": "synthetic:arithmetic"},
                "method": "lora",
                "maxSteps": 6,
                "evalEvery": 3,
                "args": {
                    "per_device_train_batch_size": 4,
                    "num_threads": 1,
                    "eval_max_samples": 4,
                },
            },
            "metrics": {"interval": "1s"},
        },
    }


def test_real_trainer_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(trainer_sweep()))
    out = tmp_path / "out"
    done = kubetune("run", str(sweep), "--output", str(out), timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    with (out / "trials.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["state"] for r in table] == ["Succeeded", "Succeeded"]
    history = read_state(out)["history"]
    assert isinstance(history, list)
    for row, record in zip(table, history, strict=True):
        trial_dir = out / "trials" / row["trial"]
        result = TrialResult.from_message((trial_dir / "result.json").read_text())
        # The trainer's own final value is what the sweep recorded.
        assert result.status == "succeeded"
        # Stamped with its launch's KUBETUNE_ATTEMPT: else the runner would not take it.
        assert result.attempt is not None and result.attempt.startswith("1-")
        assert (trial_dir / f"termination-log.{result.attempt}").exists()
        assert float(row["eval_loss"]) == pytest.approx(result.metrics["eval_loss"], rel=1e-5)
        assert record["st"] == result.steps == 6
        params = json.loads(json.dumps(record["p"]))
        assert set(params) == {"learning_rate", "lora_r"}

    best = yaml.safe_load((out / "best.yaml").read_text())
    winner = min(table, key=lambda r: float(r["eval_loss"]))
    args = best["trainer"]["args"]
    assert args["learning_rate"] == pytest.approx(float(winner["learning_rate"]))
    assert args["lora_r"] == int(winner["lora_r"])
    assert args["per_device_train_batch_size"] == 4
