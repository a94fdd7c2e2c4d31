import json
import sys
from pathlib import Path

import pytest

from kubetune import conventions
from kubetune.builders.errors import BuildError
from kubetune.local.launch import build_launch
from kubetune.spec import SweepSpec

PARAMS = {"learning_rate": 0.0002, "lora_r": 16}


def trainer_spec(**trainer: object) -> SweepSpec:
    return SweepSpec.model_validate({"trainer": {"model": "tiny", **trainer}})


def template_spec(container: dict[str, object], **template: object) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "parameters": [{"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-3}],
            "template": {"spec": {"containers": [container]}, **template},
        }
    )


def test_trainer_trial_gets_the_env_contract(tmp_path: Path) -> None:
    spec = trainer_spec(maxSteps=40, evalEvery=10, env=[{"name": "EXTRA", "value": "1"}])
    launch = build_launch(spec, "demo", "demo-t0003", PARAMS, 40123, tmp_path, base_env={})
    assert launch.argv == [sys.executable, "-m", "kubetune_trainer"]
    env = launch.env
    assert json.loads(env[conventions.ENV_PARAMS]) == PARAMS
    assert json.loads(env[conventions.ENV_TRAINER_CONFIG])["maxSteps"] == 40
    assert env[conventions.ENV_SWEEP] == "demo"
    assert env[conventions.ENV_TRIAL] == "demo-t0003"
    assert env[conventions.ENV_NAMESPACE] == "local"
    assert env[conventions.ENV_METRICS_ADDR] == "127.0.0.1"
    assert env[conventions.ENV_METRICS_PORT] == "40123"
    assert env[conventions.ENV_OUTPUT_DIR] == str(tmp_path)
    assert env[conventions.ENV_TERMINATION_LOG] == str(tmp_path / "termination-log")
    assert float(env[conventions.ENV_SCRAPE_WAIT]) > 0
    assert env["EXTRA"] == "1"
    # `python` means the interpreter kubetune runs in.
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_trainer_secret_env_must_come_from_the_shell(tmp_path: Path) -> None:
    spec = trainer_spec(
        env=[{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}}]
    )
    with pytest.raises(BuildError) as error:
        build_launch(spec, "demo", "demo-t0000", PARAMS, 1, tmp_path, base_env={})
    assert error.value.field == "spec.trainer.env[0].valueFrom"
    shell = {"HF_TOKEN": "x", conventions.ENV_SECRET_ENV: "SOMETHING_ELSE"}
    launch = build_launch(spec, "demo", "demo-t0000", PARAMS, 1, tmp_path, base_env=shell)
    assert launch.env["HF_TOKEN"] == "x"
    # The trainer redacts it in what it reports, as in a pod; the shell's value does not count.
    assert launch.env[conventions.ENV_SECRET_ENV] == "HF_TOKEN"


def test_template_substitutes_params_in_command_args_and_env(tmp_path: Path) -> None:
    spec = template_spec(
        {
            "name": "main",
            "command": ["python", "train.py"],
            "args": ["--lr=${params.learning_rate}"],
            "env": [
                {"name": "LR", "value": "${params.learning_rate}"},
                {"name": "KUBETUNE_TRIAL", "value": "spoofed"},
            ],
            "workingDir": "/srv",
        }
    )
    launch = build_launch(
        spec, "demo", "demo-t0001", {"learning_rate": 0.0002}, 5, tmp_path, base_env={}
    )
    assert launch.argv == ["python", "train.py", "--lr=0.0002"]
    assert launch.env["LR"] == "0.0002"
    assert launch.env[conventions.ENV_TRIAL] == "demo-t0001"
    assert launch.cwd == "/srv"
    assert conventions.ENV_TRAINER_CONFIG not in launch.env


def test_template_picks_the_named_container(tmp_path: Path) -> None:
    spec = template_spec(
        {"name": "main", "command": ["main"]},
    ).model_copy()
    two = SweepSpec.model_validate(
        spec.model_dump(by_alias=True, exclude_none=True)
        | {
            "template": {
                "container": "second",
                "spec": {
                    "containers": [
                        {"name": "first", "command": ["first"]},
                        {
                            "name": "second",
                            "command": ["second"],
                            "args": ["${params.learning_rate}"],
                        },
                    ]
                },
            }
        }
    )
    launch = build_launch(
        two, "demo", "demo-t0000", {"learning_rate": 0.5}, 5, tmp_path, base_env={}
    )
    assert launch.argv == ["second", "0.5"]


@pytest.mark.parametrize(
    ("container", "field"),
    [
        ({"name": "main", "image": "x"}, "spec.template.spec.containers[0].command"),
        (
            {"name": "main", "command": ["run", "${params.nope}"]},
            "spec.template.spec.containers[0].command[1]",
        ),
        (
            {
                "name": "main",
                "command": ["run"],
                "env": [{"name": "S", "valueFrom": {"secretKeyRef": {}}}],
            },
            "spec.template.spec.containers[0].env[0].valueFrom",
        ),
    ],
)
def test_template_problems_name_the_field(
    tmp_path: Path, container: dict[str, object], field: str
) -> None:
    with pytest.raises(BuildError) as error:
        build_launch(
            template_spec(container),
            "demo",
            "demo-t0000",
            {"learning_rate": 0.1},
            5,
            tmp_path,
            base_env={},
        )
    assert error.value.field == field


def job_spec(containers: list[dict[str, object]], **primary: object) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "parameters": [{"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-3}],
            "workload": {
                "object": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "spec": {"template": {"spec": {"containers": containers}}},
                },
                "primaryPod": primary,
            },
        }
    )


def test_job_workload_runs_its_primary_container_locally(tmp_path: Path) -> None:
    spec = job_spec(
        [
            {"name": "sidecar", "image": "x", "command": ["sleep", "9"]},
            {
                "name": "train",
                "image": "x",
                "command": ["python", "train.py"],
                "args": ["--lr=${params.learning_rate}", "--out=${trial.name}/${trial.number}"],
                "env": [{"name": "SWEEP", "value": "${sweep.name}"}],
            },
        ],
        container="train",
    )
    launch = build_launch(spec, "demo", "demo-t0007", PARAMS, 1, tmp_path, base_env={})
    assert launch.argv == ["python", "train.py", "--lr=0.0002", "--out=demo-t0007/7"]
    assert launch.env["SWEEP"] == "demo"
    assert launch.env[conventions.ENV_TRIAL] == "demo-t0007"


def test_unknown_workload_kinds_are_refused_naming_the_field(tmp_path: Path) -> None:
    spec = job_spec([{"name": "a", "image": "x", "command": ["true"]}])
    assert spec.workload is not None
    spec.workload.object["kind"] = "JobSet"  # a batch/v1 JobSet: no such kind
    with pytest.raises(BuildError) as error:
        build_launch(spec, "demo", "demo-t0000", PARAMS, 1, tmp_path, base_env={})
    assert error.value.field == "spec.workload.podTemplates"
    assert "batch/v1 JobSet is a kind kubetune does not know (it knows batch/v1 Job, " in (
        error.value.rule
    )


def test_a_pytorchjob_runs_locally_as_its_master_container(tmp_path: Path) -> None:
    spec = job_spec([{"name": "a", "image": "x", "command": ["true"]}])
    assert spec.workload is not None
    obj = spec.workload.object
    template = obj["spec"].pop("template")
    worker = {"spec": {"containers": [{"name": "a", "image": "x", "command": ["false"]}]}}
    obj.update(apiVersion="kubeflow.org/v1", kind="PyTorchJob")
    obj["spec"]["pytorchReplicaSpecs"] = {
        "Worker": {"replicas": 1, "template": worker},
        "Master": {"replicas": 1, "template": template},
    }
    launch = build_launch(spec, "demo", "demo-t0000", PARAMS, 1, tmp_path, base_env={})
    assert launch.argv == ["true"]


def test_a_trainjob_needs_a_cluster_in_one_line(tmp_path: Path) -> None:
    spec = job_spec([{"name": "a", "image": "x", "command": ["true"]}])
    assert spec.workload is not None
    obj = spec.workload.object
    obj.update(apiVersion="trainer.kubeflow.org/v1alpha1", kind="TrainJob")
    obj["spec"] = {"runtimeRef": {"name": "torch-distributed"}}
    with pytest.raises(BuildError) as error:
        build_launch(spec, "demo", "demo-t0000", PARAMS, 1, tmp_path, base_env={})
    assert error.value.field == "spec.workload.object.kind"
    assert error.value.rule.startswith("a TrainJob needs a cluster: its container comes from")
