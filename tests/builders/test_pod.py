"""Trial pod manifests, compared as dicts."""

import json
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.errors import BuildError
from kubetune.builders.pod import build_trial_pod, trial_selector
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep


def _sweep(
    spec: dict[str, Any], name: str = "demo", namespace: str = "team"
) -> HyperparameterSweep:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v.get("value", v.get("valueFrom")) for v in container["env"]}


TRAINER_SPEC = {
    "budget": {"maxTrials": 4, "parallelism": 2, "trialTimeout": "30m"},
    "trainer": {
        "image": "ghcr.io/example/trainer:1",
        "model": "tiny",
        "maxSteps": 20,
        "evalEvery": 5,
        "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "8Gi"}},
        "env": [
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
        ],
    },
}


def test_trainer_is_told_which_env_values_are_secrets() -> None:
    secret = {"secretKeyRef": {"name": "s", "key": "k"}}
    plain_env = [{"name": "PLAIN", "value": "v"}]
    trainer = {
        **TRAINER_SPEC["trainer"],
        "env": [
            *plain_env,
            {"name": "API_KEY", "valueFrom": secret},
            {"name": "FROM_MAP", "valueFrom": {"configMapKeyRef": {"name": "m", "key": "k"}}},
            {"name": "DB_PASSWORD", "valueFrom": secret},
        ],
    }
    sweep = _sweep({**TRAINER_SPEC, "trainer": trainer})
    env = _env(build_trial_pod(sweep, effective_spec(sweep.spec), 1, {})["spec"]["containers"][0])
    assert env[conventions.ENV_SECRET_ENV] == "API_KEY,DB_PASSWORD"
    plain = _sweep({**TRAINER_SPEC, "trainer": {**trainer, "env": plain_env}})
    env = _env(build_trial_pod(plain, effective_spec(plain.spec), 1, {})["spec"]["containers"][0])
    assert conventions.ENV_SECRET_ENV not in env


def test_trainer_pod_is_complete() -> None:
    sweep = _sweep(TRAINER_SPEC)
    params = {"learning_rate": 0.0002, "lora_r": 16}
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 7, params)
    container = pod["spec"]["containers"][0]
    expected_env = {
        conventions.ENV_SWEEP: "demo",
        conventions.ENV_TRIAL: "demo-t0007",
        conventions.ENV_NAMESPACE: "team",
        conventions.ENV_PARAMS: json.dumps(params, sort_keys=True),
        conventions.ENV_METRICS_PORT: str(conventions.DEFAULT_METRICS_PORT),
        conventions.ENV_METRICS_ADDR: {"fieldRef": {"fieldPath": "status.podIP"}},
        conventions.ENV_TERMINATION_LOG: conventions.DEFAULT_TERMINATION_LOG,
        "HF_TOKEN": {"secretKeyRef": {"name": "hf", "key": "token"}},
        conventions.ENV_SECRET_ENV: "HF_TOKEN",
    }
    env = _env(container)
    config = json.loads(env.pop(conventions.ENV_TRAINER_CONFIG))
    assert env == expected_env
    assert config["model"] == "tiny" and config["maxSteps"] == 20
    assert not {"env", "resources", "image"} & set(config), "secrets/resources stay out"
    assert pod["metadata"] == {
        "name": "demo-t0007",
        "namespace": "team",
        "labels": {
            conventions.LABEL_SWEEP: "demo",
            conventions.LABEL_TRIAL: "demo-t0007",
            conventions.LABEL_MANAGED_BY: conventions.MANAGED_BY,
            "app.kubernetes.io/component": "trial",
        },
        "annotations": {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": "9400",
            "prometheus.io/path": "/metrics",
            "kubetune.dev/attempt": "1",
            "kubetune.dev/container": "trainer",
        },
    }
    assert {k: v for k, v in container.items() if k != "env"} == {
        "name": "trainer",
        "image": "ghcr.io/example/trainer:1",
        "command": ["python", "-m", "kubetune_trainer"],
        "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "8Gi"}},
        "ports": [{"name": "metrics", "containerPort": 9400, "protocol": "TCP"}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    assert {k: v for k, v in pod["spec"].items() if k != "containers"} == {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": 1800,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        # The default policy allows no ServiceAccount: the pod gets no API token.
        "automountServiceAccountToken": False,
    }


def test_same_inputs_same_pod() -> None:
    sweep = _sweep(TRAINER_SPEC)
    spec = effective_spec(sweep.spec)
    assert build_trial_pod(sweep, spec, 1, {"a": 1}) == build_trial_pod(sweep, spec, 1, {"a": 1})


def test_trainer_image_falls_back_to_operator_default_or_names_field() -> None:
    spec = json.loads(json.dumps(TRAINER_SPEC))
    del spec["trainer"]["image"]
    sweep = _sweep(spec)
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 0, {}, default_image="img:2")
    assert pod["spec"]["containers"][0]["image"] == "img:2"
    with pytest.raises(BuildError) as err:
        build_trial_pod(sweep, effective_spec(sweep.spec), 0, {})
    assert err.value.field == "spec.trainer.image"


def test_output_dir_is_per_trial() -> None:
    spec = json.loads(json.dumps(TRAINER_SPEC))
    spec["trainer"]["outputDir"] = "/out/"
    sweep = _sweep(spec)
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 3, {})
    assert _env(pod["spec"]["containers"][0])[conventions.ENV_OUTPUT_DIR] == "/out/demo-t0003"


TEMPLATE_SPEC = {
    "parameters": [
        {"name": "lr", "type": "float", "min": 0.001, "max": 0.1, "log": True},
        {"name": "opt", "type": "categorical", "values": ["adam", "sgd"]},
        {"name": "fused", "type": "categorical", "values": [True, False]},
    ],
    "metrics": {"scrape": {"port": 9500}},
    "template": {
        "metadata": {"labels": {"team": "nlp"}, "annotations": {"note": "x"}},
        "container": "train",
        "spec": {
            "restartPolicy": "OnFailure",
            "securityContext": {"runAsUser": 1000},
            "containers": [
                {"name": "sidecar", "image": "busybox", "args": ["${params.opt}"]},
                {
                    "name": "train",
                    "image": "me/train:1",
                    "command": ["python", "train.py", "--lr=${params.lr}"],
                    "args": ["--opt", "${params.opt}", "--fused=${params.fused}"],
                    "env": [
                        {"name": "LR", "value": "${params.lr}"},
                        {"name": "KUBETUNE_PARAMS", "value": "forged"},
                        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                    ],
                    "ports": [{"containerPort": 9500}],
                    "resources": {"requests": {"cpu": "2"}},
                    "securityContext": {
                        "runAsUser": 2000,
                        "capabilities": {"add": ["NET_BIND_SERVICE"]},
                    },
                },
            ],
        },
    },
}


def test_template_substitutes_params_and_keeps_user_settings() -> None:
    sweep = _sweep(TEMPLATE_SPEC)
    params: dict[str, bool | int | float | str] = {"lr": 0.0125, "opt": "sgd", "fused": True}
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 2, params)
    sidecar, train = pod["spec"]["containers"]
    assert sidecar["args"] == ["sgd"]
    assert "env" not in sidecar, "only the trial container gets KUBETUNE_*"
    assert train["command"] == ["python", "train.py", "--lr=0.0125"]
    assert train["args"] == ["--opt", "sgd", "--fused=true"]
    env = _env(train)
    assert env["LR"] == "0.0125"
    assert env[conventions.ENV_PARAMS] == json.dumps(params, sort_keys=True)
    assert env[conventions.ENV_METRICS_PORT] == "9500"
    assert env["TOKEN"] == {"secretKeyRef": {"name": "s", "key": "k"}}
    assert [v["name"] for v in train["env"]].count(conventions.ENV_PARAMS) == 1
    assert train["ports"] == [{"containerPort": 9500, "name": "metrics"}]
    assert train["resources"] == {"requests": {"cpu": "2"}}
    # The template's settings win key by key; adding a capability keeps dropping the others.
    assert train["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "runAsUser": 2000,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    }
    # Sidecars are hardened like the trial's container.
    assert sidecar["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert pod["spec"]["securityContext"] == {
        "runAsUser": 1000,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["metadata"]["labels"]["team"] == "nlp"
    assert pod["metadata"]["labels"][conventions.LABEL_TRIAL] == "demo-t0002"
    assert pod["metadata"]["annotations"]["note"] == "x"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9500"
    # The sweep's template is not mutated by building.
    assert sweep.spec.template is not None
    assert sweep.spec.template.spec["containers"][1]["args"][1] == "${params.opt}"


def test_template_without_named_container_names_the_field() -> None:
    spec = json.loads(json.dumps(TEMPLATE_SPEC))
    spec["template"]["container"] = "missing"
    sweep = _sweep(spec)
    with pytest.raises(BuildError) as err:
        build_trial_pod(sweep, effective_spec(sweep.spec), 0, {"lr": 0.01, "opt": "a", "fused": 1})
    assert err.value.field == "spec.template.container"
    assert "missing" in str(err.value) and "train" in str(err.value)


def test_unknown_placeholder_names_the_field() -> None:
    spec = json.loads(json.dumps(TEMPLATE_SPEC))
    spec["template"]["spec"]["containers"][1]["args"] = ["--x=${params.nope}"]
    sweep = _sweep(spec)
    with pytest.raises(BuildError) as err:
        build_trial_pod(sweep, effective_spec(sweep.spec), 0, {"lr": 0.01, "opt": "a", "fused": 1})
    assert err.value.field == "spec.template.spec.containers[1].args[0]"
    assert "nope" in err.value.rule


def test_template_with_no_containers_is_refused() -> None:
    spec = json.loads(json.dumps(TEMPLATE_SPEC))
    spec["template"]["spec"]["containers"] = []
    spec["template"].pop("container")
    sweep = _sweep(spec)
    with pytest.raises(BuildError) as err:
        build_trial_pod(sweep, effective_spec(sweep.spec), 0, {})
    assert err.value.field == "spec.template.spec.containers"


def test_first_container_is_the_default_and_ports_are_added() -> None:
    spec = json.loads(json.dumps(TEMPLATE_SPEC))
    spec["template"].pop("container")
    sweep = _sweep(spec)
    pod = build_trial_pod(
        sweep, effective_spec(sweep.spec), 0, {"lr": 0.01, "opt": "a", "fused": 1}
    )
    first = pod["spec"]["containers"][0]
    assert first["name"] == "sidecar"
    assert first["ports"] == [{"name": "metrics", "containerPort": 9500, "protocol": "TCP"}]


def test_selector_matches_labels() -> None:
    sweep = _sweep(TRAINER_SPEC)
    labels = build_trial_pod(sweep, effective_spec(sweep.spec), 0, {})["metadata"]["labels"]
    for term in trial_selector("demo").split(","):
        key, value = term.split("=")
        assert labels[key] == value
