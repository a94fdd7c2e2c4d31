"""Where a trainer's pods run: pod fields under `trainer:`, shmSize and Kueue's queueName."""

import json
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.contract import trainer_config
from kubetune.builders.pod import build_trial_pod, trial_labels
from kubetune.builders.security import PolicyRefused
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep
from kubetune.spec.trainer import POD_FIELDS, SHM_PATH, SHM_VOLUME, TrainerSpec

# A GPU sweep as a user would write it, with fields pasted from a Deployment.
GPU_TRAINER: dict[str, Any] = {
    "image": "ghcr.io/example/trainer:1",
    "model": "meta-llama/Llama-3.2-1B",
    "maxSteps": 400,
    "evalEvery": 50,
    "outputDir": "/results",
    "resources": {"limits": {"nvidia.com/gpu": 1, "memory": "32Gi"}},
    "nodeSelector": {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"},
    "tolerations": [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "gpu-memory", "operator": "Gt", "values": ["40000"]}
                        ]
                    }
                ]
            }
        }
    },
    "priorityClassName": "batch-low",
    "serviceAccountName": "trainer",
    "imagePullSecrets": [{"name": "ghcr"}],
    "volumes": [
        {"name": "results", "persistentVolumeClaim": {"claimName": "sweep-results"}},
        {"name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
    ],
    "volumeMounts": [
        {"name": "results", "mountPath": "/results"},
        {"name": "models", "mountPath": "/models", "readOnly": True},
    ],
    "labels": {"team": "nlp", conventions.LABEL_SWEEP: "not-mine"},
    "annotations": {"cost-center": "42", "prometheus.io/port": "1"},
    "runtimeClassName": "nvidia",
    "cache": {"claimName": "hf-models"},
    "schedulerName": "gang-scheduler",
    "shmSize": "16Gi",
}
ALLOWED = PodPolicy(allowed_service_accounts=("trainer",))


def _sweep(trainer: dict[str, Any], **spec: Any) -> HyperparameterSweep:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "gpu", "namespace": "team"},
            "spec": {"trainer": trainer, **spec},
        }
    )


def _pod(sweep: HyperparameterSweep, policy: PodPolicy = ALLOWED) -> dict[str, Any]:
    return build_trial_pod(sweep, effective_spec(sweep.spec), 3, {}, policy=policy)


def test_gpu_trainer_pod_carries_every_placement_field() -> None:
    pod = _pod(_sweep(GPU_TRAINER, queueName="team-gpu"))
    spec = pod["spec"]
    assert spec["nodeSelector"] == GPU_TRAINER["nodeSelector"]
    assert spec["tolerations"] == GPU_TRAINER["tolerations"]
    assert spec["affinity"] == GPU_TRAINER["affinity"]
    assert spec["priorityClassName"] == "batch-low"
    assert spec["serviceAccountName"] == "trainer"
    assert spec["imagePullSecrets"] == [{"name": "ghcr"}]
    assert spec["runtimeClassName"] == "nvidia"
    assert spec["schedulerName"] == "gang-scheduler"
    assert spec["volumes"] == [
        *GPU_TRAINER["volumes"],
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
        {"name": conventions.HF_CACHE_VOLUME, "persistentVolumeClaim": {"claimName": "hf-models"}},
    ]
    container = spec["containers"][0]
    assert container["volumeMounts"] == [
        *GPU_TRAINER["volumeMounts"],
        {"name": SHM_VOLUME, "mountPath": SHM_PATH},
        {"name": conventions.HF_CACHE_VOLUME, "mountPath": conventions.HF_CACHE_PATH},
    ]
    labels = pod["metadata"]["labels"]
    assert labels["team"] == "nlp"
    assert labels[conventions.LABEL_KUEUE_QUEUE] == "team-gpu"
    assert pod["metadata"]["annotations"]["cost-center"] == "42"
    # The pod is still kubetune's trial pod: the contract and the hardening are all there.
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env[conventions.ENV_OUTPUT_DIR] == "/results/gpu-t0003"
    assert spec["restartPolicy"] == "Never"
    assert spec["securityContext"]["runAsNonRoot"] is True


def test_kubetune_labels_and_annotations_win_over_the_users() -> None:
    trainer = {
        **GPU_TRAINER,
        "labels": {**GPU_TRAINER["labels"], conventions.LABEL_KUEUE_QUEUE: "other"},
    }
    pod = _pod(_sweep(trainer, queueName="team-gpu"))
    labels, annotations = pod["metadata"]["labels"], pod["metadata"]["annotations"]
    for key, value in trial_labels("gpu", "gpu-t0003").items():
        assert labels[key] == value
    assert labels[conventions.LABEL_SWEEP] == "gpu"
    assert labels[conventions.LABEL_KUEUE_QUEUE] == "team-gpu"
    assert annotations["prometheus.io/port"] == str(conventions.DEFAULT_METRICS_PORT)


def test_pod_fields_never_reach_the_trainer_config() -> None:
    trainer = TrainerSpec.model_validate(GPU_TRAINER)
    config = json.loads(trainer_config(trainer))
    pod_keys = {TrainerSpec.model_fields[name].alias or name for name in POD_FIELDS}
    assert pod_keys <= set(GPU_TRAINER)  # the fixture sets every pod field
    assert not pod_keys & set(config), sorted(pod_keys & set(config))
    assert config["outputDir"] == "/results" and config["maxSteps"] == 400


def test_plain_trainer_pod_gets_no_placement() -> None:
    pod = _pod(_sweep({"image": "trainer:1"}))
    assert set(pod["spec"]) == {
        "containers",
        "securityContext",
        "automountServiceAccountToken",
        "restartPolicy",
    }
    assert "volumeMounts" not in pod["spec"]["containers"][0]
    assert conventions.LABEL_KUEUE_QUEUE not in pod["metadata"]["labels"]


def test_queue_name_labels_template_pods_too() -> None:
    sweep = parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "tpl", "namespace": "team"},
            "spec": {
                "queueName": "team-gpu",
                "parameters": [{"name": "lr", "type": "float", "min": 0.1, "max": 0.5}],
                "template": {"spec": {"containers": [{"name": "main", "image": "x:1"}]}},
            },
        }
    )
    pod = build_trial_pod(sweep, effective_spec(sweep.spec), 1, {"lr": 0.2})
    assert pod["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "team-gpu"


def test_shm_size_alone_mounts_memory_backed_dev_shm() -> None:
    pod = _pod(_sweep({"image": "trainer:1", "shmSize": 17179869184}))
    assert pod["spec"]["volumes"] == [
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": 17179869184}}
    ]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": SHM_VOLUME, "mountPath": "/dev/shm"}
    ]


def test_host_path_volume_is_refused_by_the_default_policy_naming_the_trainer_field() -> None:
    trainer = {
        "image": "trainer:1",
        "volumes": [
            {"name": "cache", "emptyDir": {}},
            {"name": "host", "hostPath": {"path": "/"}},
        ],
        "volumeMounts": [{"name": "host", "mountPath": "/host"}],
    }
    with pytest.raises(PolicyRefused) as error:
        _pod(_sweep(trainer), policy=PodPolicy())
    assert error.value.problems == [
        "spec.trainer.volumes[1].hostPath: refused by pod policy restricted: "
        "hostPath volumes are not allowed"
    ]


def test_service_account_outside_the_allow_list_is_refused() -> None:
    with pytest.raises(PolicyRefused) as error:
        _pod(_sweep({"image": "trainer:1", "serviceAccountName": "admin"}), policy=PodPolicy())
    assert error.value.problems[0].startswith(
        "spec.trainer.serviceAccountName: refused by pod policy restricted: "
        "ServiceAccount admin is not in allowedServiceAccounts"
    )


def test_apparmor_annotation_is_refused_naming_the_trainer_field() -> None:
    key = "container.apparmor.security.beta.kubernetes.io/trainer"
    trainer = {"image": "trainer:1", "annotations": {key: "unconfined"}}
    with pytest.raises(PolicyRefused) as error:
        _pod(_sweep(trainer), policy=PodPolicy(level="baseline"))
    assert error.value.problems[0].startswith(f"spec.trainer.annotations[{key}]: refused")
