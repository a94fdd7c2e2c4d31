import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune.cli import main
from tests.dependency_sets import run_blocked
from tests.spec.conftest import manifest

Write = Callable[[Any], Path]


def test_valid_manifest_exits_zero(
    write_manifest: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(manifest())
    assert main(["validate", str(path)]) == 0
    assert f"{path}: demo: valid" in capsys.readouterr().out


def test_explain_prints_every_default(
    write_manifest: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(manifest(parameters=None, objective=None, algorithm=None))
    assert main(["validate", "--explain", str(path)]) == 0
    effective = yaml.safe_load(capsys.readouterr().out)
    spec = effective["spec"]
    assert [p["name"] for p in spec["parameters"]] == [
        "learning_rate", "lora_r", "lora_dropout", "warmup_ratio"
    ]  # fmt: skip
    assert spec["algorithm"]["name"] == "auto"
    assert spec["objective"] == {
        "metric": "eval_loss",
        "direction": "minimize",
        "strategy": "final",
    }
    # One trial at a time (the default parallelism): the startup trials alone are pruned.
    assert (spec["earlyStopping"]["name"], spec["earlyStopping"]["trials"]) == ("asha", "startup")
    assert spec["trainer"]["method"] == "lora"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("spec: [unclosed\n", "malformed YAML: line 2"),
        ({"kind": "Pod", "apiVersion": "v1"}, "kind: must be HyperparameterSweep"),
        (manifest(algorithm={"name": "bayesian"}), "spec.algorithm.name: must be one of"),
        (manifest(budget={"maxTrials": 2, "parallelism": 3}), "spec.budget.parallelism"),
        ("", "no YAML document found"),
        ("- just\n- a list\n", "the document must be a mapping"),
    ],
)
def test_bad_input_exits_two_with_the_field(
    write_manifest: Write, capsys: pytest.CaptureFixture[str], doc: Any, expected: str
) -> None:
    path = write_manifest(doc)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {expected}" in err
    assert "Traceback" not in err


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read file" in capsys.readouterr().err


def test_one_bad_file_does_not_hide_the_good_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(manifest()))
    bad.write_text(yaml.safe_dump(manifest(budget={"maxTrials": 0})))
    assert main(["validate", str(good), str(bad)]) == 2
    captured = capsys.readouterr()
    assert "good.yaml: demo: valid" in captured.out
    assert "bad.yaml: spec.budget.maxTrials: must be >= 1" in captured.err


def test_console_entry_point_has_no_traceback(write_manifest: Write) -> None:
    path = write_manifest("kind: [\n")
    done = subprocess.run(
        [sys.executable, "-m", "kubetune", "validate", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "malformed YAML" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            {"spec": {"containers": []}},
            "spec.template.spec.containers: must list at least one container",
        ),
        (
            {"spec": {"containers": [{"image": "x"}]}},
            "spec.template.spec.containers: every container needs a name",
        ),
        (
            {"container": "trainer", "spec": {"containers": [{"name": "main", "image": "x"}]}},
            "spec.template.container: no container named 'trainer' in spec.template.spec.containers (have main)",
        ),
    ],
)
def test_template_container_rules(
    write_manifest: Write,
    capsys: pytest.CaptureFixture[str],
    template: dict[str, Any],
    expected: str,
) -> None:
    path = write_manifest(manifest(trainer=None, template=template))
    assert main(["validate", str(path)]) == 2
    assert f"{path}: {expected}" in capsys.readouterr().err


def test_template_with_named_container_is_valid(write_manifest: Write) -> None:
    containers = [{"name": "side", "image": "s"}, {"name": "main", "image": "m"}]
    template = {"container": "main", "spec": {"containers": containers}}
    assert main(["validate", str(write_manifest(manifest(trainer=None, template=template)))]) == 0


def test_parameters_are_checked_against_the_trainer_arguments(
    write_manifest: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(
        manifest(
            parameters=[
                {"name": "learnin_rate", "type": "float", "min": 1e-5, "max": 1e-3, "log": True},
                {"name": "lora_r", "type": "categorical", "values": [8, "big"]},
                {"name": "lora_dropout", "type": "float", "min": 0.0, "max": 2.0},
            ],
            trainer={"maxSteps": 20, "evalEvery": 10, "args": {"per_device_train_batch_size": -4}},
        )
    )
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}: spec.trainer.args.per_device_train_batch_size: must be >= 1, got -4",
        f"{path}: spec.parameters[0].name: unknown trainer argument (did you mean learning_rate?)",
        f"{path}: spec.parameters[1].values[1]: must be an integer, got 'big'",
        f"{path}: spec.parameters[2].max: must be < 1.0, got 2.0",
    ]


# ---- the pod policy -------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]


def _template(**pod_spec: Any) -> dict[str, Any]:
    doc = manifest(trainer=None, parameters=[{"name": "lr", "type": "float", "min": 0.1, "max": 1}])
    container = {"name": "main", "image": "me/train:1", "args": ["--lr=${params.lr}"]}
    doc["spec"]["template"] = {"spec": {"containers": [container], **pod_spec}}
    return doc


def test_privileged_template_is_refused_by_the_default_policy(
    write_manifest: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(
        _template(hostNetwork=True, volumes=[{"name": "root", "hostPath": {"path": "/"}}])
    )
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: spec.template.spec.hostNetwork: refused by pod policy restricted: "
        "host namespaces must not be shared",
        f"{path}: spec.template.spec.volumes[0].hostPath: refused by pod policy restricted: "
        "hostPath volumes are not allowed",
    ]
    assert main(["validate", "--pod-policy", "privileged", str(path)]) == 0
    assert f"{path}: demo: valid" in capsys.readouterr().out


def test_policy_file_allows_a_service_account(
    write_manifest: Write, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(_template(serviceAccountName="trainer"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "spec.template.spec.serviceAccountName: refused by pod policy restricted" in err
    policy = tmp_path / "policy.yaml"
    policy.write_text("level: restricted\nallowedServiceAccounts: [trainer]\n")
    assert main(["validate", "--pod-policy", str(policy), str(path)]) == 0


def test_bad_policy_option_is_one_line(
    write_manifest: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(manifest())
    assert main(["validate", "--pod-policy", "lenient", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "--pod-policy: 'lenient' is not a level (privileged, baseline, restricted) nor a policy file"
    ]


def test_examples_meet_the_default_policy(capsys: pytest.CaptureFixture[str]) -> None:
    trainjob = str(REPO / "examples/trainjob-sweep.yaml")
    examples = sorted(str(p) for p in (REPO / "examples").rglob("*.yaml") if str(p) != trainjob)
    assert str(REPO / "examples/custom-trainer/sweep.yaml") in examples
    assert main(["validate", *examples]) == 0, capsys.readouterr().err


def test_the_trainjob_example_needs_the_admin_to_vouch_for_its_runtime(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Its pods come from the runtime's templates, which kubetune cannot check: the default
    policy refuses it naming the field; the example policy, listing the runtime, admits it."""
    trainjob = str(REPO / "examples/trainjob-sweep.yaml")
    policy = str(REPO / "examples/trainjob-pod-policy.json")
    assert main(["validate", trainjob]) == 2
    assert capsys.readouterr().err.startswith(
        f"{trainjob}: spec.workload.object.spec.runtimeRef: refused by pod policy restricted"
    )
    assert main(["validate", "--pod-policy", policy, trainjob]) == 0, capsys.readouterr().err


def test_custom_trainer_image_runs_as_a_numeric_non_root_user() -> None:
    # runAsNonRoot can only be verified by the kubelet for a numeric USER.
    lines = (REPO / "examples/custom-trainer/Dockerfile").read_text().splitlines()
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "the image must not run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_validate_needs_only_the_base_install(write_manifest: Write) -> None:
    path = write_manifest(manifest())
    done = run_blocked("kubetune", ["validate", str(path)], timeout=60)
    assert done.returncode == 0, done.stderr
    assert "demo: valid" in done.stdout


def test_run_without_the_operator_extra_says_what_to_install(write_manifest: Write) -> None:
    path = write_manifest(manifest())
    done = run_blocked("kubetune", ["run", str(path)], timeout=60)
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("kubetune run: needs ") and "pip install 'kubetune[operator]'" in line


def test_validate_checks_a_job_workload_pod_template_against_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = yaml.safe_load((REPO / "examples/kueue-job-sweep.yaml").read_text())
    job = example["spec"]["workload"]["object"]
    job["spec"]["template"]["spec"]["hostNetwork"] = True
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(example))
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: spec.workload.object.spec.template.spec.hostNetwork: refused by pod policy "
        "restricted: host namespaces must not be shared"
    ]
    assert main(["validate", "--pod-policy", "privileged", str(path)]) == 0
