"""`kubetune import-katib`: Katib Experiments (shaped as Katib's API and examples) to sweeps."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune.cli import main
from kubetune.katib import KatibError, convert, parameter_name
from kubetune.spec.loader import load_sweep

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "training-container",
                        "image": "docker.io/kubeflowkatib/pytorch-mnist-cpu:latest",
                        "command": [
                            "python3",
                            "/opt/pytorch-mnist/mnist.py",
                            "--epochs=1",
                            "--lr=${trialParameters.learningRate}",
                            "--momentum=${trialParameters.momentum}",
                        ],
                        "env": [{"name": "OPTIMIZER", "value": "${trialParameters.momentum}"}],
                    }
                ],
                "restartPolicy": "Never",
            }
        }
    },
}

RANDOM: dict[str, Any] = {
    "apiVersion": "kubeflow.org/v1beta1",
    "kind": "Experiment",
    "metadata": {"namespace": "kubeflow", "name": "random"},
    "spec": {
        "objective": {
            "type": "maximize",
            "goal": 0.99,
            "objectiveMetricName": "Validation-accuracy",
            "additionalMetricNames": ["Train-accuracy"],
            "metricStrategies": [{"name": "Train-accuracy", "value": "latest"}],
        },
        "algorithm": {
            "algorithmName": "random",
            "algorithmSettings": [{"name": "random_state", "value": "10"}],
        },
        "parallelTrialCount": 3,
        "maxTrialCount": 12,
        "maxFailedTrialCount": 3,
        "metricsCollectorSpec": {
            "collector": {"kind": "PrometheusMetric"},
            "source": {"httpGet": {"port": 9090, "path": "/prom"}},
        },
        "parameters": [
            {
                "name": "lr",
                "parameterType": "double",
                "feasibleSpace": {"min": "0.01", "max": "0.05"},
            },
            {
                "name": "momentum",
                "parameterType": "double",
                "feasibleSpace": {"min": "0.5", "max": "0.9"},
            },
        ],
        "trialTemplate": {
            "primaryContainerName": "training-container",
            "trialParameters": [
                {"name": "learningRate", "description": "lr", "reference": "lr"},
                {"name": "momentum", "description": "momentum", "reference": "momentum"},
            ],
            "trialSpec": JOB,
        },
    },
}


def experiment(**spec_changes: Any) -> dict[str, Any]:
    """RANDOM with spec fields replaced; a value of None deletes the field."""
    doc = copy.deepcopy(RANDOM)
    for key, value in spec_changes.items():
        if value is None:
            doc["spec"].pop(key, None)
        else:
            doc["spec"][key] = value
    return doc


TPE = experiment(
    objective={"type": "minimize", "objectiveMetricName": "loss"},
    algorithm={
        "algorithmName": "tpe",
        "algorithmSettings": [
            {"name": "n_startup_trials", "value": "4"},
            {"name": "random_state", "value": "7"},
        ],
    },
    earlyStopping={
        "algorithmName": "medianstop",
        "algorithmSettings": [
            {"name": "min_trials_required", "value": "2"},
            {"name": "start_step", "value": "5"},
        ],
    },
    parameters=[
        {
            "name": "lr",
            "parameterType": "double",
            "feasibleSpace": {"min": "0.0001", "max": "0.1", "distribution": "logUniform"},
        },
        {
            "name": "momentum",
            "parameterType": "categorical",
            "feasibleSpace": {"list": ["sgd", "adam", "ftrl"]},
        },
    ],
    metricsCollectorSpec=None,
)

GRID = experiment(
    algorithm={"algorithmName": "grid"},
    maxTrialCount=12,
    parameters=[
        {
            "name": "lr",
            "parameterType": "double",
            "feasibleSpace": {"min": "0.01", "max": "0.03", "step": "0.01"},
        },
        {
            "name": "momentum",
            "parameterType": "discrete",
            "feasibleSpace": {"list": ["1", "2", "4", "8"]},
        },
    ],
)

UNSUPPORTED = experiment(
    algorithm={
        "algorithmName": "bayesianoptimization",
        "algorithmSettings": [
            {"name": "n_initial_points", "value": "5"},
            {"name": "acq_func", "value": "gp_hedge"},
        ],
    },
    earlyStopping={"algorithmName": "someotherstop"},
    resumePolicy="FromVolume",
    metricsCollectorSpec={
        "collector": {"kind": "File"},
        "source": {"fileSystemPath": {"path": "/var/log/katib/metrics.log", "kind": "File"}},
    },
    parameters=[
        {
            "name": "num-layers",
            "parameterType": "int",
            "feasibleSpace": {"min": "2", "max": "5"},
        },
        {
            "name": "momentum",
            "parameterType": "double",
            "feasibleSpace": {"min": "0.5", "max": "0.9", "distribution": "normal"},
        },
    ],
)
UNSUPPORTED["spec"]["trialTemplate"]["trialParameters"][0]["reference"] = "num-layers"
UNSUPPORTED["spec"]["trialTemplate"]["retain"] = True
UNSUPPORTED["spec"]["trialTemplate"]["trialSpec"] = copy.deepcopy(JOB)
UNSUPPORTED["spec"]["trialTemplate"]["trialSpec"]["spec"]["backoffLimit"] = 2
UNSUPPORTED["spec"]["trialTemplate"]["trialSpec"]["spec"]["activeDeadlineSeconds"] = 600
UNSUPPORTED["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["metadata"] = {
    "annotations": {"lr": "${trialParameters.learningRate}"}
}


def write(tmp_path: Path, *docs: Any, name: str = "experiment.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        "---\n".join(d if isinstance(d, str) else yaml.safe_dump(d) for d in docs),
        encoding="utf-8",
    )
    return path


def imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: Any
) -> tuple[dict[str, Any], list[str], Path]:
    """Convert through the CLI; the sweep (re-read by kubetune's loader), stderr lines, file."""
    assert main(["import-katib", str(write(tmp_path, doc))]) == 0
    out, err = capsys.readouterr()
    sweep_path = tmp_path / "sweep.yaml"
    sweep_path.write_text(out, encoding="utf-8")
    load_sweep(sweep_path)  # kubetune's own loader accepts it
    assert main(["validate", str(sweep_path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    return yaml.safe_load(out), err.splitlines(), sweep_path


def test_random_experiment_with_job_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep, unmapped, _ = imported(tmp_path, capsys, RANDOM)
    assert sweep["metadata"] == {"name": "random", "namespace": "kubeflow"}
    spec = sweep["spec"]
    # Katib's default strategy for a maximized objective is max, not latest.
    assert spec["objective"] == {
        "metric": "Validation-accuracy",
        "direction": "maximize",
        "strategy": "max",
        "target": 0.99,
    }
    assert spec["additionalMetrics"] == ["Train-accuracy"]
    assert spec["algorithm"] == {"name": "random", "seed": 10}
    assert spec["budget"] == {"maxTrials": 12, "parallelism": 3, "maxFailedTrials": 3}
    assert spec["parameters"] == [
        {"name": "lr", "type": "float", "min": 0.01, "max": 0.05},
        {"name": "momentum", "type": "float", "min": 0.5, "max": 0.9},
    ]
    container = spec["template"]["spec"]["containers"][0]
    assert spec["template"]["container"] == "training-container"
    assert container["command"][-2:] == ["--lr=${params.lr}", "--momentum=${params.momentum}"]
    assert container["env"] == [{"name": "OPTIMIZER", "value": "${params.momentum}"}]
    assert spec["metrics"] == {"scrape": {"path": "/prom", "port": 9090}}
    assert unmapped == []


def test_tpe_log_uniform_categorical_and_medianstop(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep, unmapped, _ = imported(tmp_path, capsys, TPE)
    spec = sweep["spec"]
    assert spec["objective"]["strategy"] == "min"
    assert spec["algorithm"] == {"name": "tpe", "startupTrials": 4, "seed": 7}
    assert spec["earlyStopping"] == {"name": "median", "startupTrials": 2, "minSteps": 5}
    assert spec["parameters"] == [
        {"name": "lr", "type": "float", "min": 0.0001, "max": 0.1, "log": True},
        {"name": "momentum", "type": "categorical", "values": ["sgd", "adam", "ftrl"]},
    ]
    where = f"{tmp_path / 'experiment.yaml'}: not converted: "
    assert unmapped == [
        where + "spec.earlyStopping.algorithmSettings[1]: start_step counts reported results, "
        "kubetune's minSteps counts training steps; converted as minSteps 5, check it against "
        "the trial's steps",
    ]
    # No metricsCollectorSpec: Katib's default collector reads name=value lines from stdout,
    # as kubetune's log source does with its default (Katib's) filter.
    assert spec["metrics"] == {"logs": {}}


def test_a_stdout_collector_filter_becomes_the_log_filter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = experiment(
        metricsCollectorSpec={
            "collector": {"kind": "StdOut"},
            "source": {"filter": {"metricsFormat": ["([\\w-]+)=([0-9.]+)"]}},
        }
    )
    sweep, unmapped, _ = imported(tmp_path, capsys, doc)
    assert sweep["spec"]["metrics"] == {"logs": {"filter": "([\\w-]+)=([0-9.]+)"}}
    assert unmapped == []


def test_grid_with_discrete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep, unmapped, _ = imported(tmp_path, capsys, GRID)
    spec = sweep["spec"]
    assert spec["algorithm"] == {"name": "grid"}
    assert spec["parameters"] == [
        {"name": "lr", "type": "float", "min": 0.01, "max": 0.03, "step": 0.01},
        {"name": "momentum", "type": "categorical", "values": [1, 2, 4, 8]},
    ]
    assert unmapped == []


def test_unsupported_parts_are_listed_with_their_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep, unmapped, _ = imported(tmp_path, capsys, UNSUPPORTED)
    spec = sweep["spec"]
    assert spec["algorithm"] == {"name": "gp", "startupTrials": 5}
    assert "earlyStopping" not in spec
    assert spec["budget"]["trialTimeout"] == "600s"
    assert spec["parameters"][0] == {"name": "num_layers", "type": "int", "min": 2, "max": 5}
    assert spec["template"]["spec"]["containers"][0]["command"][3] == "--lr=${params.num_layers}"
    paths = [line.split(": not converted: ")[1].split(": ")[0] for line in unmapped]
    assert paths == [
        "spec.algorithm.algorithmSettings[1]",
        "spec.earlyStopping.algorithmName",
        "spec.parameters[0].name",
        "spec.parameters[1].feasibleSpace.distribution",
        "spec.trialTemplate.retain",
        "spec.trialTemplate.trialSpec.spec.backoffLimit",
        "spec.trialTemplate.trialSpec.spec.template.metadata.annotations.lr",
        "spec.metricsCollectorSpec.collector.kind",
        "spec.resumePolicy",
    ]
    # The annotation is not a place kubetune substitutes: left as written, and said so.
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations == {"lr": "${trialParameters.learningRate}"}


def test_several_files_and_documents_are_separated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write(tmp_path, RANDOM, TPE, name="two.yaml")
    second = write(tmp_path, GRID, name="grid.yaml")
    assert main(["import-katib", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(out)]
    assert len(names) == 3 and out.count("\n---\n") == 2


def _pod(name: str, *args: str) -> dict[str, Any]:
    container = {"name": name, "image": "docker.io/kubeflowkatib/pytorch-mnist:latest"}
    return {"spec": {"containers": [{**container, "command": ["python3", "/mnist.py", *args]}]}}


# Shaped as Katib's PyTorchJob examples: their conditions and primary pod labels as Katib
# writes them.
PYTORCH_TEMPLATE: dict[str, Any] = {
    "primaryContainerName": "pytorch",
    "primaryPodLabels": {"training.kubeflow.org/job-role": "master"},
    "successCondition": 'status.conditions.#(type=="Succeeded")#|#(status=="True")#',
    "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
    "trialParameters": [
        {"name": "learningRate", "description": "lr", "reference": "lr"},
        {"name": "momentum", "description": "momentum", "reference": "momentum"},
    ],
    "trialSpec": {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {
                    "replicas": 1,
                    "restartPolicy": "OnFailure",
                    "template": _pod("pytorch", "--lr=${trialParameters.learningRate}"),
                },
                "Worker": {
                    "replicas": 2,
                    "restartPolicy": "OnFailure",
                    "template": _pod("pytorch", "--momentum=${trialParameters.momentum}"),
                },
            }
        },
    },
}


def test_a_pytorchjob_trial_becomes_a_workload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep, unmapped, _ = imported(
        tmp_path, capsys, experiment(trialTemplate=copy.deepcopy(PYTORCH_TEMPLATE))
    )
    workload = sweep["spec"]["workload"]
    assert "template" not in sweep["spec"]
    # kubetune reads a PyTorchJob's own conditions and master: Katib's defaults need nothing.
    assert workload["primaryPod"] == {"container": "pytorch"}
    assert set(workload) == {"object", "primaryPod"}
    replicas = workload["object"]["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["template"]["spec"]["containers"][0]["command"][-1] == (
        "--lr=${params.lr}"
    )
    assert replicas["Worker"]["template"]["spec"]["containers"][0]["command"][-1] == (
        "--momentum=${params.momentum}"
    )
    assert unmapped == []


def test_other_conditions_on_a_known_kind_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = copy.deepcopy(PYTORCH_TEMPLATE)
    template["successCondition"] = 'status.conditions.#(type=="Running")#|#(status=="True")#'
    template["primaryPodLabels"] = {"app": "x"}
    _sweep, unmapped, _ = imported(tmp_path, capsys, experiment(trialTemplate=template))
    where = f"{tmp_path / 'experiment.yaml'}: not converted: spec.trialTemplate."
    assert unmapped == [
        where + "successCondition: kubetune reads a PyTorchJob's own Succeeded",
        where + "primaryPodLabels: kubetune picks a PyTorchJob's primary pod itself "
        "(training.kubeflow.org/replica-index=0, training.kubeflow.org/replica-type=master)",
    ]


# A Kubeflow TFJob: a kind kubetune does not know, with the conditions Katib's examples give it.
TFJOB_TEMPLATE: dict[str, Any] = {
    "primaryContainerName": "tensorflow",
    "primaryPodLabels": {"training.kubeflow.org/replica-type": "chief"},
    "successCondition": 'status.conditions.#(type=="Succeeded")#|#(status=="True")#',
    "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
    "trialParameters": [{"name": "learningRate", "description": "lr", "reference": "lr"}],
    "trialSpec": {
        "apiVersion": "kubeflow.org/v1",
        "kind": "TFJob",
        "spec": {
            "tfReplicaSpecs": {
                "Worker": {"replicas": 2, "template": _pod("tensorflow")},
                "Chief": {
                    "replicas": 1,
                    "template": _pod("tensorflow", "--lr=${trialParameters.learningRate}"),
                },
            }
        },
    },
}


def test_a_kind_kubetune_does_not_know_gets_its_templates_labels_and_conditions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep, unmapped, _ = imported(
        tmp_path, capsys, experiment(trialTemplate=copy.deepcopy(TFJOB_TEMPLATE))
    )
    workload = sweep["spec"]["workload"]
    # Both hold the primary container: in the object's order (the test file's keys sorted).
    assert workload["podTemplates"] == [
        "spec.tfReplicaSpecs.Chief.template",
        "spec.tfReplicaSpecs.Worker.template",
    ]
    assert workload["primaryPod"] == {
        "container": "tensorflow",
        "labels": {"training.kubeflow.org/replica-type": "chief"},
    }
    assert workload["successCondition"] == {"type": "Succeeded"}
    assert workload["failureCondition"] == {"type": "Failed"}
    chief = workload["object"]["spec"]["tfReplicaSpecs"]["Chief"]["template"]
    assert chief["spec"]["containers"][0]["command"][-1] == "--lr=${params.lr}"
    assert unmapped == []


@pytest.mark.parametrize(
    ("katib", "ours"),
    [
        ('status.conditions.#(type=="Complete")#|#(status=="True")#', {"type": "Complete"}),
        (
            'status.conditions.#(type=="Ready")#|#(status=="False")#',
            {"type": "Ready", "status": "False"},
        ),
        ('status.[@this].#(phase=="Succeeded")#', {"field": "status.phase", "equals": "Succeeded"}),
    ],
)
def test_katibs_condition_forms_map(katib: str, ours: dict[str, str]) -> None:
    from kubetune.katib import status_match

    assert status_match(katib) == ours


def test_other_gjson_conditions_are_listed_and_the_sweep_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = copy.deepcopy(TFJOB_TEMPLATE)
    template["failureCondition"] = 'status.conditions.#(type=="Failed")#|@reverse'
    path = write(tmp_path, experiment(trialTemplate=template))
    assert main(["import-katib", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        f"{path}: not converted: spec.trialTemplate.failureCondition: "
        "'status.conditions.#(type==\"Failed\")#|@reverse': kubetune matches a status "
        "condition or a status field's value" in err
    )
    assert "the converted sweep is invalid: spec.workload.failureCondition: required" in err
    assert "Traceback" not in err


def _without(path: list[str]) -> dict[str, Any]:
    doc = copy.deepcopy(RANDOM)
    holder = doc
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return doc


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("spec: [unclosed\n", "malformed YAML: line 2"),
        ({"apiVersion": "v1", "kind": "Pod"}, "apiVersion: must be kubeflow.org/v1beta1"),
        (
            {**RANDOM, "apiVersion": "kubeflow.org/v1alpha3"},
            "apiVersion: must be kubeflow.org/v1beta1, got 'kubeflow.org/v1alpha3'",
        ),
        ("- a\n- list\n", "the document must be a mapping"),
        (
            _without(["spec", "objective", "objectiveMetricName"]),
            "spec.objective.objectiveMetricName: required",
        ),
        (_without(["spec", "objective", "type"]), "spec.objective.type: required"),
        (_without(["spec", "algorithm"]), "spec.algorithm: required"),
        (_without(["spec", "trialTemplate"]), "spec.trialTemplate: required"),
        (_without(["spec", "parameters"]), "spec.parameters: required"),
        (
            _without(["spec", "parameters", 0, "feasibleSpace", "max"]),  # type: ignore[list-item]
            "spec.parameters[0].feasibleSpace.max: required",
        ),
        (
            experiment(maxTrialCount="twelve"),
            "spec.maxTrialCount: must be an integer",
        ),
    ],
)
def test_bad_input_exits_two_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: Any, expected: str
) -> None:
    path = write(tmp_path, doc)
    assert main(["import-katib", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}: {expected}" in err
    assert "Traceback" not in err


def test_bad_values_name_the_field() -> None:
    doc = copy.deepcopy(RANDOM)
    doc["spec"]["parameters"][0]["feasibleSpace"]["min"] = "small"
    doc["spec"]["trialTemplate"]["trialParameters"][0]["reference"] = "nope"
    with pytest.raises(KatibError) as raised:
        convert(doc)
    assert raised.value.problems == [
        "spec.parameters[0].feasibleSpace.min: must be a number, got 'small'",
        "spec.trialTemplate.trialParameters[0].reference: 'nope' names no spec.parameters entry",
    ]


def test_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import-katib", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("katib", "ours"),
    [("lr", "lr"), ("num-layers", "num_layers"), ("2nd", "_2nd"), ("class", "class_")],
)
def test_parameter_names_become_identifiers(katib: str, ours: str) -> None:
    assert parameter_name(katib) == ours
