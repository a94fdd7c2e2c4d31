"""trainer.gpus: N trainer processes on one node under torchrun, in a pod and locally."""

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kubetune.builders.contract import trainer_command
from kubetune.builders.pod import build_trial_pod
from kubetune.local.launch import build_launch
from kubetune.spec import HyperparameterSweep, SweepSpec, effective_spec, parse_sweep
from kubetune.spec.trainer import TrainerSpec

TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]


def _sweep(trainer: dict[str, Any]) -> HyperparameterSweep:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "gpu", "namespace": "team"},
            "spec": {"trainer": {"image": "trainer:1", **trainer}},
        }
    )


def _command(trainer: dict[str, Any]) -> list[str]:
    sweep = _sweep(trainer)
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 1, {})
    command: list[str] = pod["spec"]["containers"][0]["command"]
    return command


def test_one_process_runs_the_trainer_itself() -> None:
    assert _command({}) == ["python", "-m", "kubetune_trainer"]
    assert _command({"gpus": 1}) == ["python", "-m", "kubetune_trainer"]
    limits = {"resources": {"limits": {"nvidia.com/gpu": 1}}}
    assert _command(limits) == ["python", "-m", "kubetune_trainer"]


def test_gpus_runs_the_trainer_under_torchrun() -> None:
    assert _command({"gpus": 4}) == ["python", *TORCHRUN, "-m", "kubetune_trainer"]


@pytest.mark.parametrize("limit", [4, "4"])
def test_the_gpu_limit_gives_the_process_count(limit: int | str) -> None:
    trainer = {"resources": {"limits": {"nvidia.com/gpu": limit}}}
    assert _command(trainer) == ["python", *TORCHRUN, "-m", "kubetune_trainer"]


def test_gpus_asks_for_as_many_gpus_when_the_limits_do_not() -> None:
    sweep = _sweep({"gpus": 2, "resources": {"limits": {"memory": "32Gi"}}})
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 1, {})
    limits = pod["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "32Gi", "nvidia.com/gpu": 2}
    sweep = _sweep({"gpus": 2, "resources": {"limits": {"nvidia.com/gpu": 8}}})
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 1, {})
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 8}


def test_explicit_gpus_wins_over_the_limit() -> None:
    trainer = TrainerSpec.model_validate(
        {"gpus": 2, "resources": {"limits": {"nvidia.com/gpu": 8}}}
    )
    assert trainer.processes() == 2


def test_generate_mode_stays_on_one_process_with_several_gpus() -> None:
    trainer = TrainerSpec.model_validate(
        {"mode": "generate", "resources": {"limits": {"nvidia.com/gpu": 4}}}
    )
    assert trainer.processes() == 1


@pytest.mark.parametrize(
    ("trainer", "message"),
    [
        ({"gpus": 0}, "gpus"),
        ({"gpus": 4, "resources": {"limits": {"nvidia.com/gpu": 2}}}, "nvidia.com/gpu is 2"),
        ({"gpus": 2, "mode": "generate"}, "mode train only"),
        ({"gpus": 3}, "per_device_train_batch_size: 8 .* divisible by 3"),
        (
            {
                "resources": {"limits": {"nvidia.com/gpu": 4}},
                "args": {"per_device_train_batch_size": 6},
            },
            "per_device_train_batch_size: 6 .* divisible by 4",
        ),
    ],
)
def test_bad_gpus_are_refused_naming_the_field(trainer: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainerSpec.model_validate(trainer)


def test_gpus_is_not_part_of_the_trainer_config() -> None:
    sweep = _sweep({"gpus": 2})
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 1, {})
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert "gpus" not in json.loads(env["KUBETUNE_TRAINER_CONFIG"])


def test_local_run_uses_torchrun_with_its_own_interpreter(tmp_path: Path) -> None:
    spec = SweepSpec.model_validate({"trainer": {"model": "tiny", "gpus": 2}})
    launch = build_launch(spec, "demo", "demo-t0001", {}, 40123, tmp_path, base_env={})
    assert launch.argv == trainer_command(2, sys.executable)
    assert launch.argv[:4] == [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    assert "--nproc-per-node=2" in launch.argv
