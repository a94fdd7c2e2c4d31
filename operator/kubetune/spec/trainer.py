"""What each trial runs: the built-in trainer, or any pod template."""

import copy
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from kubetune import conventions
from kubetune.spec.durations import DURATION_PATTERN, parse_duration
from kubetune.spec.parameters import SpecModel
from kubetune.spec.pod_fields import (
    DNS_SUBDOMAIN_MAX,
    DNS_SUBDOMAIN_PATTERN,
    LocalObjectReference,
    Toleration,
    VolumeMount,
    label_key_problem,
    label_value_problem,
    quantity_bytes,
    volume_problems,
)
from kubetune.spec.status_match import StatusMatch, path_problem
from kubetune.spec.training_args import TrainingArguments

TrainerArgValue = bool | int | float | str | list[str]
GPU_RESOURCE = "nvidia.com/gpu"
# One node's worth: DDP over more processes than a node has GPUs is a mistake, not a plan.
MAX_PROCESSES = 64
MAX_NODES = 64
_DEFAULT_BATCH = TrainingArguments.model_fields["per_device_train_batch_size"].default
Quantity = int | str


class DatasetSpec(SpecModel):
    """Training data: a local JSONL/text file, a hub dataset id, or synthetic:<task>."""

    path: str = Field(
        default="synthetic:arithmetic",
        min_length=1,
        description="synthetic:<task>, a local .jsonl/.txt path, or a Hugging Face dataset id.",
    )
    train_split: str | None = Field(default=None, description='e.g. "train[:2000]"')
    eval_split: str | None = Field(default=None, description='e.g. "train[2000:2200]"')
    text_field: str | None = Field(default=None, description="Column with plain text.")
    prompt_field: str | None = Field(default=None, description="Column with the prompt.")
    response_field: str | None = Field(default=None, description="Column with the answer.")


class SecretKeySelector(SpecModel):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)
    optional: bool | None = None


class ObjectFieldSelector(SpecModel):
    field_path: str = Field(min_length=1)
    api_version: str | None = None


class EnvVarSource(SpecModel):
    secret_key_ref: SecretKeySelector | None = None
    config_map_key_ref: SecretKeySelector | None = None
    field_ref: ObjectFieldSelector | None = None


class EnvVar(SpecModel):
    """A container environment variable; secrets only through secretKeyRef."""

    name: str = Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = None
    value_from: EnvVarSource | None = None


class ResourceRequirements(SpecModel):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


# Long enough for a 70B model's ~140 GB on a slow link; short enough that a stuck download
# does not hold a sweep's trials for a day.
DEFAULT_PREFETCH_TIMEOUT = "2h"


class ModelCache(SpecModel):
    """A volume shared by every trial as the Hugging Face cache (HF_HOME): the model downloads once."""

    claim_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=DNS_SUBDOMAIN_MAX,
        description="A PersistentVolumeClaim in the sweep's namespace (ReadWriteMany for parallel trials).",
    )
    volume: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Any other volume source, without a name (e.g. {nfs: {server: ..., path: ...}}); "
            "the admin pod policy decides which volume types are allowed."
        ),
    )
    prefetch_timeout: str = Field(
        default=DEFAULT_PREFETCH_TIMEOUT,
        pattern=DURATION_PATTERN,
        description=(
            "The prefetch pod's deadline (activeDeadlineSeconds), e.g. 30m or 2h: a download "
            "still running then fails the sweep (ModelCached False, PrefetchFailed) instead "
            "of holding its trials forever."
        ),
    )

    @field_validator("prefetch_timeout")
    @classmethod
    def _positive_timeout(cls, timeout: str) -> str:
        if parse_duration(timeout) < 1:
            raise ValueError(f"must be at least 1s, got {timeout!r}")
        return timeout

    def prefetch_timeout_seconds(self) -> int:
        return max(1, int(parse_duration(self.prefetch_timeout)))

    @model_validator(mode="after")
    def _one_source(self) -> "ModelCache":
        if (self.claim_name is None) == (self.volume is None):
            raise ValueError("set exactly one of claimName or volume")
        if self.volume is not None:
            if "name" in self.volume:
                raise ValueError(f"volume.name: kubetune names it {conventions.HF_CACHE_VOLUME}")
            if len(self.volume) != 1:
                raise ValueError(
                    "volume: needs exactly one volume source (nfs, csi, emptyDir, ...)"
                )
        return self

    def pod_volume(self) -> dict[str, Any]:
        """The trial pod's Volume for the cache."""
        if self.claim_name is not None:
            source: dict[str, Any] = {"persistentVolumeClaim": {"claimName": self.claim_name}}
        else:
            source = copy.deepcopy(self.volume or {})
        return {"name": conventions.HF_CACHE_VOLUME, **source}


# The memory-backed volume shmSize adds, and where it goes: NCCL and PyTorch's data loader
# workers share tensors through /dev/shm, which a container runtime caps at 64 MiB.
SHM_VOLUME = "kubetune-shm"
SHM_PATH = "/dev/shm"

# TrainerSpec fields that shape the trial pod, not the training: never in the trainer config.
POD_FIELDS = frozenset(
    {
        "node_selector",
        "tolerations",
        "affinity",
        "priority_class_name",
        "service_account_name",
        "image_pull_secrets",
        "volumes",
        "volume_mounts",
        "labels",
        "annotations",
        "runtime_class_name",
        "scheduler_name",
        "shm_size",
        "cache",
    }
)

_OWN_KEYS = (
    "Keys kubetune sets on every trial pod (kubetune.dev/*, app.kubernetes.io/managed-by, "
    "app.kubernetes.io/component, prometheus.io/*, kueue.x-k8s.io/queue-name with "
    "spec.queueName) keep kubetune's value."
)


class TrainerSpec(SpecModel):
    """Settings of the built-in LLM fine-tuning trainer, and where its pods run."""

    image: str | None = Field(
        default=None, description="Trainer image; default from the operator's configuration."
    )
    model: str = Field(
        default=conventions.TINY_MODEL,
        min_length=1,
        description="Hub id, a path on a mounted volume, or tiny.",
    )
    method: Literal["lora", "qlora", "full"] = "lora"
    mode: Literal["train", "generate"] = Field(
        default="train",
        description="generate: tune decoding settings of a trained model, no training.",
    )
    adapter: str | None = Field(
        default=None, description="generate mode: path of a trained adapter or model to evaluate."
    )
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    max_steps: int = Field(default=200, ge=1)
    eval_every: int = Field(default=50, ge=1)
    checkpoint_every: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Write a resumable checkpoint every N steps under the trial's output folder "
            "(0: never); default: at each evaluation (evalEvery). A requeued trial resumes "
            "from it when outputDir is on a volume that outlives the pod."
        ),
    )
    keep_checkpoints: Literal["best", "all", "none"] = Field(
        default="best",
        description=(
            "What a trial that ran to its end (succeeded or failed) keeps in its output "
            "folder: best: its final/ artifacts (adapter or model, tokenizer, best.yaml), "
            "not its checkpoints; all: both; none: neither, only result.json. A stopped "
            "trial (pruned, preempted) keeps its checkpoint to resume from."
        ),
    )
    args: dict[str, TrainerArgValue] = Field(
        default_factory=dict,
        description="Fixed trainer arguments (snake_case); parameters of the same name override them.",
    )
    output_dir: str | None = Field(
        default=None, description="Where adapters and results go, e.g. a mounted volume."
    )
    resources: ResourceRequirements | None = None
    gpus: int | None = Field(
        default=None,
        ge=1,
        le=MAX_PROCESSES,
        description=(
            "Trainer processes of one trial, on one node, under torchrun with DDP: one per GPU "
            f"(where there is no GPU, as with `kubetune run` on a laptop, N CPU processes). "
            f"Default: the {GPU_RESOURCE} limit in resources, else 1. The batch size stays "
            "global: per_device_train_batch_size is split across the processes."
        ),
    )
    nodes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_NODES,
        description=(
            "Pods of one trial, each running `gpus` trainer processes, under one torchrun "
            "rendezvous (node 0's pod is the master and the trial's primary pod; only global "
            "rank 0 reports). The operator runs them as an Indexed batch/v1 Job with the "
            "sweep's headless Service for their DNS names; Kueue admits the Job as one unit. "
            "GPU-hours count nodes x gpus. The batch stays global across all nodes x gpus "
            "processes. Cluster only: `kubetune run` refuses nodes > 1 (use gpus)."
        ),
    )
    env: list[EnvVar] = Field(default_factory=list)

    # Pod placement and runtime: Kubernetes' own names and shapes, so they paste from a
    # Deployment. They shape the pod only; `kubetune run` ignores them.
    node_selector: dict[str, str] | None = Field(
        default=None, description="Node labels a trial pod needs, e.g. a GPU node pool."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, description="Taints trial pods tolerate, e.g. nvidia.com/gpu."
    )
    affinity: dict[str, Any] | None = Field(
        default=None, description="A Kubernetes Affinity (nodeAffinity, podAntiAffinity, ...)."
    )
    priority_class_name: str | None = Field(
        default=None, pattern=DNS_SUBDOMAIN_PATTERN, max_length=DNS_SUBDOMAIN_MAX
    )
    service_account_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=DNS_SUBDOMAIN_MAX,
        description="Must be in the operator's pod policy allowedServiceAccounts.",
    )
    image_pull_secrets: list[LocalObjectReference] | None = None
    volumes: list[dict[str, Any]] | None = Field(
        default=None,
        description=(
            "Kubernetes Volumes of the trial pod (e.g. a persistentVolumeClaim for outputDir); "
            "the admin pod policy decides which volume types are allowed."
        ),
    )
    volume_mounts: list[VolumeMount] | None = Field(
        default=None, description="Mounts of trainer.volumes in the trainer container."
    )
    labels: dict[str, str] | None = Field(
        default=None, description=f"Extra labels of each trial pod. {_OWN_KEYS}"
    )
    annotations: dict[str, str] | None = Field(
        default=None, description=f"Extra annotations of each trial pod. {_OWN_KEYS}"
    )
    runtime_class_name: str | None = Field(
        default=None,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=DNS_SUBDOMAIN_MAX,
        description="e.g. nvidia, where the GPU runtime is not the node's default.",
    )
    scheduler_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=DNS_SUBDOMAIN_MAX,
        description="A scheduler other than the default one (e.g. a gang scheduler).",
    )
    cache: ModelCache | None = Field(
        default=None,
        description=(
            f"A volume mounted at {conventions.HF_CACHE_PATH} as the Hugging Face cache "
            f"({conventions.ENV_HF_HOME}) of every trial, so the model is downloaded once "
            "(`python -m kubetune_trainer prefetch`), not once per trial."
        ),
    )
    shm_size: Quantity | None = Field(
        default=None,
        description=(
            f"Size of a memory-backed {SHM_PATH} in the trainer container (e.g. 16Gi); NCCL "
            "and data loader workers need more than the runtime's 64Mi. Counts against the "
            "pod's memory."
        ),
    )

    @field_validator("shm_size")
    @classmethod
    def _shm_size_is_a_quantity(cls, size: Quantity | None) -> Quantity | None:
        if size is not None and quantity_bytes(size) <= 0:
            raise ValueError(f"must be more than 0, got {size!r}")
        return size

    @field_validator("labels", "annotations", "node_selector")
    @classmethod
    def _valid_keys(
        cls, entries: dict[str, str] | None, info: ValidationInfo
    ) -> dict[str, str] | None:
        for key, value in (entries or {}).items():
            problem = label_key_problem(key)
            if problem is None and info.field_name != "annotations":
                problem = label_value_problem(value)
            if problem is not None:
                raise ValueError(f"{key[:64]!r}: {problem}")
        return entries

    @field_validator("volumes")
    @classmethod
    def _named_volumes(cls, volumes: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        problems = volume_problems(volumes or [])
        if problems:
            raise ValueError(problems[0])
        return volumes

    @model_validator(mode="after")
    def _processes_fit(self) -> "TrainerSpec":
        limit = (self.resources.limits or {}).get(GPU_RESOURCE) if self.resources else None
        if (
            self.gpus is not None
            and limit is not None
            and str(limit).isdigit()
            and self.gpus > int(str(limit))
        ):
            raise ValueError(
                f"gpus: {self.gpus} processes need as many GPUs, but resources.limits "
                f"{GPU_RESOURCE} is {limit}"
            )
        if self.gpus is not None and self.gpus > 1 and self.mode == "generate":
            raise ValueError("gpus: more than one process is for mode train only")
        if self.args.get("fsdp") is True and self.method != "full":
            raise ValueError("args.fsdp: shards full fine-tunes only (method full)")
        if (self.nodes or 1) > 1 and self.mode == "generate":
            raise ValueError("nodes: more than one node is for mode train only")
        processes = self.processes() * (self.nodes or 1)
        batch = self.args.get("per_device_train_batch_size", _DEFAULT_BATCH)
        if processes > 1 and isinstance(batch, int) and batch % processes:
            # The trainer checks a batch size that is a tuned parameter, at its start.
            raise ValueError(
                f"args.per_device_train_batch_size: {batch} is the batch of all {processes} "
                f"processes together and must be divisible by {processes}"
            )
        return self

    @model_validator(mode="after")
    def _mounts_name_volumes(self) -> "TrainerSpec":
        names = {volume.get("name") for volume in self.volumes or []}
        if self.shm_size is not None and SHM_VOLUME in names:
            raise ValueError(f"volumes: the name {SHM_VOLUME} is kubetune's with shmSize")
        if self.cache is not None:
            if conventions.HF_CACHE_VOLUME in names:
                raise ValueError(
                    f"volumes: the name {conventions.HF_CACHE_VOLUME} is kubetune's with cache"
                )
            if any(var.name == conventions.ENV_HF_HOME for var in self.env):
                raise ValueError(f"env: {conventions.ENV_HF_HOME} is set by trainer.cache")
        for index, mount in enumerate(self.volume_mounts or []):
            if mount.name not in names:
                raise ValueError(
                    f"volumeMounts[{index}].name: no volume named {mount.name[:64]!r} in "
                    "trainer.volumes"
                )
            if self.shm_size is not None and mount.mount_path.rstrip("/") == SHM_PATH:
                raise ValueError(
                    f"volumeMounts[{index}].mountPath: shmSize already mounts {SHM_PATH}"
                )
            if self.cache is not None and mount.mount_path.rstrip("/") == conventions.HF_CACHE_PATH:
                raise ValueError(
                    f"volumeMounts[{index}].mountPath: cache already mounts "
                    f"{conventions.HF_CACHE_PATH}"
                )
        return self

    @field_validator("env")
    @classmethod
    def _no_reserved_env(cls, env: list[EnvVar]) -> list[EnvVar]:
        for index, var in enumerate(env):
            if conventions.is_kubetune_env(var.name):
                raise ValueError(f"[{index}].name: KUBETUNE_* variables are set by kubetune")
            if var.value is not None and var.value_from is not None:
                raise ValueError(f"[{index}]: set value or valueFrom, not both")
        return env

    def processes(self) -> int:
        """Trainer processes per trial: gpus, else the nvidia.com/gpu limit (train mode), else 1."""
        if self.gpus is not None:
            return self.gpus
        if self.mode == "generate":
            return 1  # generation runs on one process; it may still use every GPU it has
        limit = (self.resources.limits or {}).get(GPU_RESOURCE) if self.resources else None
        if isinstance(limit, int) and not isinstance(limit, bool):
            return max(1, min(limit, MAX_PROCESSES))
        if isinstance(limit, str) and limit.isdigit():
            return max(1, min(int(limit), MAX_PROCESSES))
        return 1

    def secret_env_names(self) -> list[str]:
        """The env vars whose values come from a secret: the trainer never reports them."""
        return [
            var.name
            for var in self.env
            if var.value_from is not None and var.value_from.secret_key_ref is not None
        ]


class TemplateSpec(SpecModel):
    """Any pod template: parameters reach it as ${params.NAME} and KUBETUNE_PARAMS."""

    metadata: dict[str, Any] | None = None
    spec: dict[str, Any] = Field(description="A PodSpec.")
    container: str | None = Field(
        default=None, description="Container that runs the trial; default the first one."
    )


class PrimaryPod(SpecModel):
    """Which pod and container of a workload are the trial: their exit status, result and
    metrics count. The primary pod is the kind's: a Job's one pod, a PyTorchJob's master
    (else worker 0), a JobSet's pod 0 of Job 0 of its first replicatedJob."""

    container: str | None = Field(
        default=None,
        description=(
            "Container that runs the trial in the primary pod's template; default the first "
            "one. In the other pod templates a container of this name (else the first) gets "
            "the trial contract too."
        ),
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        max_length=8,
        description=(
            "Only for a kind kubetune does not know: labels only the primary pod has, as the "
            "kind's controller sets them (Katib's primaryPodLabels). Required with more than "
            "one pod template; without them every pod of the first one is primary."
        ),
    )

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            problem = label_key_problem(key) or label_value_problem(value)
            if problem is not None:
                raise ValueError(f"{key}: {problem}")
        return labels


class WorkloadSpec(SpecModel):
    """A Kubernetes workload as a trial: a batch/v1 Job, a jobset.x-k8s.io/v1alpha2 JobSet,
    a kubeflow.org/v1 PyTorchJob or a trainer.kubeflow.org/v1alpha1 TrainJob
    (spec/workload_kinds.py, spec/trainjob.py), or any other kind with its pod
    templates, success and failure conditions given here. kubetune's labels, the trial
    contract, hardening and the pod policy reach every pod template inside; the trial is
    judged by the primary pod, and fails when the workload's failure condition holds."""

    object: dict[str, Any] = Field(
        description=(
            "The whole object (apiVersion, kind, metadata, spec): a batch/v1 Job, "
            "jobset.x-k8s.io/v1alpha2 JobSet, kubeflow.org/v1 PyTorchJob or "
            "trainer.kubeflow.org/v1alpha1 TrainJob, or a custom "
            "resource of another kind with podTemplates and conditions; ${params.NAME}, "
            "${trial.name}, ${trial.number} and ${sweep.name} are substituted in every string."
        )
    )
    primary_pod: PrimaryPod = Field(default_factory=PrimaryPod)
    pod_templates: list[str] = Field(
        default_factory=list,
        max_length=8,
        description=(
            "Only for a kind kubetune does not know (required then): the field paths of every "
            "pod template in the object, the primary pod's first, e.g. spec.leader.template "
            "(names and [N] list indices). A pod template left out gets no kubetune labels, "
            "trial contract or pod policy."
        ),
    )
    success_condition: StatusMatch | None = Field(
        default=None,
        description=(
            "Only for a kind kubetune does not know (required then): when the workload "
            "succeeded. The primary pod's ending still judges the trial while it exists."
        ),
    )
    failure_condition: StatusMatch | None = Field(
        default=None,
        description=(
            "Only for a kind kubetune does not know (required then): when the workload "
            "failed; the trial then fails, whatever its primary pod says."
        ),
    )
    trainer_job: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description=(
            "Only for a trainer.kubeflow.org TrainJob: the replicated job of its runtime that "
            "runs the trainer (container `node`); default `node`, the Kubeflow runtimes' name. "
            "kubetune's labels reach its pods through a podTemplateOverrides entry naming it, "
            "and its pod 0 is the primary pod."
        ),
    )

    @field_validator("pod_templates")
    @classmethod
    def _valid_paths(cls, paths: list[str]) -> list[str]:
        for index, path in enumerate(paths):
            problem = path_problem(path, under="spec")
            if problem is not None:
                raise ValueError(f"[{index}] {path!r}: {problem}")
        return paths
