"""keepCheckpoints on the cluster: pruned and failed trials kept a checkpoint at SIGTERM (they
cannot tell a prune from a preemption); when the sweep ends, the operator creates one tidy
pod (`python -m kubetune_trainer tidy`) that removes them from trainer.outputDir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.tidy import TIDY_COMMAND
from kubetune.operator import conditions as cond
from kubetune.trial_result import TrialResult
from kubetune_trainer import tidy
from tests.cluster.cluster import Cluster
from tests.operator.test_reconcile import body, ended, new, reconcile

from .helpers import condition, history, wait_event, wait_phase
from .helpers import status as sweep_status
from .runner import InProcessOperator

TRAINER = {"image": "trainer:1", "model": "tiny", "outputDir": "/results"}


def sweep(**trainer: Any) -> dict[str, Any]:
    made = body(budget={"maxTrials": 2, "parallelism": 2, "maxFailedTrials": 5})
    del made["spec"]["template"]
    made["spec"]["trainer"] = {**TRAINER, **trainer}
    made["spec"]["parameters"] = [
        {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-3}
    ]
    return made


def _condition(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == cond.CHECKPOINTS_TIDIED), None)


def _finish(rec: Any, manifest: dict[str, Any]) -> Any:
    reconcile(rec, manifest, {})
    done = TrialResult(status="succeeded", metrics={"eval_loss": 1.0}, steps=5)
    pods = {"s-t0000": ended("s-t0000", 1), "s-t0001": ended("s-t0001", 0, done)}
    return reconcile(rec, manifest, pods), pods


def test_an_ended_sweep_tidies_its_failed_and_pruned_trials_once() -> None:
    rec = new(default_image="trainer:1")
    effects, pods = _finish(rec, sweep())
    assert effects.status["phase"] in ("Succeeded", "Failed")
    pod = effects.tidy
    assert pod is not None
    assert pod["metadata"]["name"] == conventions.tidy_name("s")
    # Not a trial, never watched as one: no sweep label.
    assert conventions.LABEL_SWEEP not in pod["metadata"]["labels"]
    assert pod["metadata"]["labels"][conventions.LABEL_COMPONENT] == conventions.COMPONENT_TIDY
    (container,) = pod["spec"]["containers"]
    assert container["command"] == TIDY_COMMAND
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env[conventions.ENV_TIDY_TRIALS] == "s-t0000"  # the failed one only
    assert env[conventions.ENV_SWEEP] == "s"
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["activeDeadlineSeconds"]
    tidied = _condition(effects.status)
    assert tidied is not None and tidied["status"] == "True"
    assert tidied["reason"] == "TidyPodCreated"
    again = reconcile(rec, sweep(status=effects.status), pods)
    assert again.tidy is None  # once


@pytest.mark.parametrize(
    "trainer", [{"keepCheckpoints": "all"}, {"outputDir": None}, {"mode": "generate"}]
)
def test_nothing_to_tidy(trainer: dict[str, Any]) -> None:
    rec = new(default_image="trainer:1")
    effects, _ = _finish(rec, sweep(**trainer))
    assert effects.tidy is None and _condition(effects.status) is None


def test_no_tidy_while_a_trial_pod_still_stops() -> None:
    rec = new(default_image="trainer:1")
    manifest = sweep()
    reconcile(rec, manifest, {})
    done = TrialResult(status="succeeded", metrics={"eval_loss": 1.0}, steps=5)
    pods = {"s-t0000": ended("s-t0000", 1, live=True), "s-t0001": ended("s-t0001", 0, done)}
    assert reconcile(rec, manifest, pods).tidy is None


def _tidy_env(tmp_path: Path, keep: str, trials: str) -> dict[str, str]:
    config = {"outputDir": str(tmp_path), "keepCheckpoints": keep}
    return {
        conventions.ENV_TRAINER_CONFIG: json.dumps(config),
        conventions.ENV_SWEEP: "s",
        conventions.ENV_TIDY_TRIALS: trials,
    }


@pytest.mark.parametrize(("keep", "left"), [("best", ["final"]), ("none", [])])
def test_tidy_command_removes_what_keep_checkpoints_does_not_keep(
    tmp_path: Path, keep: str, left: list[str]
) -> None:
    for trial in ("s-t0000", "s-t0001"):
        for folder in ("checkpoint", "checkpoint.previous", "final"):
            (tmp_path / trial / folder).mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = _tidy_env(tmp_path, keep, "s-t0000,../elsewhere")
    assert tidy.run([], env) == 1  # the foreign name is refused, and said
    assert sorted(p.name for p in (tmp_path / "s-t0000").iterdir()) == left
    assert len(list((tmp_path / "s-t0001").iterdir())) == 3  # not named: untouched
    assert outside.exists()
    assert tidy.run([], _tidy_env(tmp_path, keep, "s-t0000")) == 0


@pytest.mark.slow
def test_a_timed_out_trials_checkpoint_is_removed_when_the_sweep_ends(
    trainer_operator: InProcessOperator, crd: Cluster, namespace: str, tmp_path: Path
) -> None:
    # The test cluster's pods share the host's filesystem: a host path stands in for the
    # trials' shared volume.
    results = tmp_path / "results"
    manifest = {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "tidy", "namespace": namespace},
        "spec": {
            "objective": {"metric": "eval_loss", "direction": "minimize"},
            "algorithm": {"name": "random", "seed": 1},
            "budget": {"maxTrials": 1, "parallelism": 1, "trialTimeout": "30s"},
            "parameters": [{"name": "learning_rate", "type": "categorical", "values": [0.002]}],
            "metrics": {"interval": "1s"},
            "trainer": {
                "model": "tiny",
                "dataset": {"path": "synthetic:arithmetic"},
                "maxSteps": 100000,  # never ends by itself
                "evalEvery": 100000,
                "checkpointEvery": 1,
                "outputDir": str(results),
                "args": {"per_device_train_batch_size": 4, "num_threads": 1},
            },
        },
    }
    trial = results / conventions.trial_name("tidy", 0)
    crd.create(manifest)
    # Seen while it runs (its pod, and so its log, is gone once the sweep ends): the trial had
    # a checkpoint to keep.
    crd.wait_for(
        lambda: (trial / "checkpoint").is_dir() or None,
        timeout=120,
        message="the trial wrote a checkpoint",
    )
    final = wait_phase(crd, namespace, "tidy", "Succeeded", "Failed", timeout=180)
    [record] = history(final).values()
    assert record["s"] == "Failed", record
    # The sweep ends while the stopped trial's pod still writes its last checkpoint and final/
    # at SIGTERM; the tidy pod is only made once that pod is gone. So the files are looked at
    # once the tidy pod has ended, not while the trial may be mid-way (a checkpoint moved to
    # checkpoint.previous looks, for a moment, like one removed).
    tidy_pod = crd.wait_for_pod_phase(
        namespace, conventions.tidy_name("tidy"), "Succeeded", "Failed", timeout=60
    )
    assert tidy_pod["status"]["phase"] == "Succeeded", tidy_pod["status"]
    assert not (trial / "checkpoint").exists(), "the tidy pod removed the checkpoint"
    assert not (trial / "checkpoint.previous").exists()
    # The stopped trial saved its adapter (it ran steps), and keepCheckpoints best keeps it.
    assert (trial / "final").is_dir()
    tidied = condition(sweep_status(crd, namespace, "tidy"), cond.CHECKPOINTS_TIDIED)
    assert tidied["status"] == "True", tidied
    assert wait_event(crd, namespace, "TidyStarted")
