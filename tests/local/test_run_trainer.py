"""`kubetune run` with the REAL built-in trainer on the tiny model (torch on CPU, few steps)."""

import csv
import json
import signal
import time
from pathlib import Path

import pytest
import yaml

from kubetune.trial_result import TrialResult
from tests.local.cli import kubetune, read_state, start_kubetune

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


def test_ctrl_c_then_resume_continues_the_trial_from_its_checkpoint(tmp_path: Path) -> None:
    spec = trainer_sweep()
    spec["spec"]["budget"] = {"maxTrials": 1, "parallelism": 1, "trialTimeout": "8m"}  # type: ignore[index]
    spec["spec"]["trainer"].update(maxSteps=60, evalEvery=5)  # type: ignore[index]
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    first = start_kubetune("run", str(sweep), "--output", str(out), "--grace", "20")
    trial_dir = out / "trials" / "tiny-lora-t0000"
    deadline = time.monotonic() + 180
    while not (trial_dir / "checkpoint").exists():  # interrupt once it has checkpointed
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stdout + stderr
    stopped = TrialResult.from_message((trial_dir / "result.json").read_text())
    assert stopped.status == "stopped" and 5 <= stopped.steps < 60

    second = kubetune("run", str(sweep), "--output", str(out), "--resume", timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    result = TrialResult.from_message((trial_dir / "result.json").read_text())
    # Its checkpoint survived the requeue: the second attempt went on from where it stopped.
    assert result.status == "succeeded" and result.steps == 60
    assert result.resumed_from is not None and result.resumed_from >= 5
    assert f"(resumed from step {result.resumed_from})" in second.stdout
    steps = [step for step, _ in result.intermediate["eval_loss"]]
    assert steps == list(range(5, 61, 5))  # both attempts' evaluations, each once


def test_a_trial_that_never_resumes_loses_its_checkpoint_per_keep_checkpoints(
    tmp_path: Path,
) -> None:
    """A trial stopped for good (here: past trialTimeout, judged Failed; pruned is the same
    rule) kept a checkpoint at SIGTERM, not knowing it would never resume: the runner then
    removes it (keepCheckpoints best), keeping final/."""
    manifest = trainer_sweep()
    spec = manifest["spec"]
    assert isinstance(spec, dict)
    spec["budget"] = {"maxTrials": 1, "parallelism": 1, "trialTimeout": "40s"}
    spec["trainer"]["maxSteps"] = 100000  # never ends by itself
    spec["trainer"]["evalEvery"] = 100000
    spec["trainer"]["checkpointEvery"] = 1
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump(manifest))
    out = tmp_path / "out"
    done = kubetune("run", str(sweep), "--output", str(out), timeout=600)
    with (out / "trials.csv").open() as handle:
        [row] = list(csv.DictReader(handle))
    assert row["state"] == "Failed", done.stdout[-3000:]
    trial_dir = out / "trials" / row["trial"]
    log = (trial_dir / "trial.log").read_text()
    assert "checkpoint of step" in log, log[-3000:]  # it had one to keep
    assert not (trial_dir / "checkpoint").exists()
    assert not (trial_dir / "checkpoint.previous").exists()
    assert (trial_dir / "final").is_dir()  # best: a stopped trial's adapter stays
