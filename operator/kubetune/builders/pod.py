"""Trial pods: one sweep + one trial's parameters -> a Pod manifest (a plain dict).

Pure: no kopf, no API calls. The handler adds the owner reference with kopf.adopt.
"""

import copy
from collections.abc import Mapping
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    CONTAINER_ANNOTATION,
    template_container_index,
    trainer_command,
    trainer_config,
    trial_env,
)
from kubetune.builders.errors import BuildError
from kubetune.builders.security import enforce_policy, harden_pod_spec
from kubetune.builders.substitute import ParamValue, TrialNames, substitute_container
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SweepSpec, TrainerSpec
from kubetune.spec.hub import cluster_prefetch
from kubetune.spec.trainer import GPU_RESOURCE, POD_FIELDS, SHM_PATH, SHM_VOLUME

TRAINER_CONTAINER = "trainer"
METRICS_PORT_NAME = "metrics"
TRIAL_COMPONENT = conventions.COMPONENT_TRIAL


def trial_labels(sweep: str, trial: str) -> dict[str, str]:
    return {
        conventions.LABEL_SWEEP: sweep,
        conventions.LABEL_TRIAL: trial,
        conventions.LABEL_MANAGED_BY: conventions.MANAGED_BY,
        conventions.LABEL_COMPONENT: TRIAL_COMPONENT,
    }


def trial_selector(sweep: str) -> str:
    """Label selector of every trial pod of one sweep."""
    return (
        f"{conventions.LABEL_SWEEP}={sweep},{conventions.LABEL_MANAGED_BY}={conventions.MANAGED_BY}"
    )


def metrics_port(spec: SweepSpec) -> int:
    return spec.metrics.scrape.port


def pod_env(
    sweep: HyperparameterSweep, trial: str, params: Mapping[str, ParamValue], port: int
) -> list[dict[str, Any]]:
    """The trial contract's variables as a container's env list."""
    shared = trial_env(
        sweep=sweep.name,
        namespace=sweep.namespace,
        trial=trial,
        params=params,
        port=port,
        termination_log=conventions.DEFAULT_TERMINATION_LOG,
    )
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in shared.items()]
    # The trainer binds its metrics server to the pod's own address, known only at run time.
    env.append(
        {
            "name": conventions.ENV_METRICS_ADDR,
            "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
        }
    )
    return env


def build_trial_pod(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    number: int,
    params: Mapping[str, ParamValue],
    *,
    attempt: int = 1,
    default_image: str | None = None,
    policy: PodPolicy | None = None,
) -> dict[str, Any]:
    """The Pod for trial `number` of `sweep`; `spec` is the effective spec.

    Raises BuildError naming the field when the spec cannot make a pod, or PolicyRefused
    (a BuildError) when the pod asks for more than `policy` (default: restricted) allows.
    """
    trial = conventions.trial_name(sweep.name, number)
    at: str | None = None
    if spec.template is not None:
        names = TrialNames(sweep=sweep.name, trial=trial, number=number)
        pod_spec, metadata, container = _from_template(spec, params, names)
        at = "spec.template."
    elif spec.trainer is not None:
        pod_spec, metadata, container = _from_trainer(spec.trainer, default_image)
        if cluster_prefetch(spec.trainer):
            # The operator's prefetch pod filled the cache before any trial starts (the
            # ModelCached condition): a trial reads it and never downloads by itself.
            container["env"].append({"name": conventions.ENV_HF_HUB_OFFLINE, "value": "1"})
    else:  # parse_sweep rejects this; keep the message for a hand-built spec
        raise BuildError("trainer", "set exactly one of trainer, template or workload")
    return assemble_trial_pod(
        sweep, spec, trial, params, pod_spec, metadata, container, attempt, policy, at
    )


def assemble_trial_pod(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    trial: str,
    params: Mapping[str, ParamValue],
    pod_spec: dict[str, Any],
    metadata: dict[str, Any],
    container: dict[str, Any],
    attempt: int,
    policy: PodPolicy | None,
    at: str | None,
) -> dict[str, Any]:
    """A trial pod from its user-written parts: the contract, hardening, labels, policy.

    `container` is the trial's own container inside `pod_spec`; `at` prefixes the policy's
    field paths with where the pod template is in the sweep (None: a trainer pod).
    """
    port = metrics_port(spec)
    user_env = [
        var
        for var in container.get("env") or []
        if not conventions.is_kubetune_env(var.get("name", ""))
    ]
    container["env"] = pod_env(sweep, trial, params, port) + user_env
    if spec.trainer is not None:
        container["env"].append(
            {"name": conventions.ENV_TRAINER_CONFIG, "value": trainer_config(spec.trainer)}
        )
        secrets = spec.trainer.secret_env_names()
        if secrets:
            container["env"].append(
                {"name": conventions.ENV_SECRET_ENV, "value": ",".join(secrets)}
            )
        if spec.trainer.output_dir:
            output = f"{spec.trainer.output_dir.rstrip('/')}/{trial}"
            container["env"].append({"name": conventions.ENV_OUTPUT_DIR, "value": output})
    _ensure_metrics_port(container, port)
    container.setdefault("terminationMessagePath", conventions.DEFAULT_TERMINATION_LOG)
    container.setdefault("terminationMessagePolicy", "FallbackToLogsOnError")
    policy = policy or PodPolicy()
    harden_pod_spec(pod_spec, policy)
    # A trial runs once: Kubernetes restarting it would blur results and GPU accounting.
    pod_spec["restartPolicy"] = "Never"
    timeout = spec.budget.trial_timeout_seconds()
    if timeout is not None:
        pod_spec["activeDeadlineSeconds"] = max(1, int(timeout))

    # The user's labels and annotations first: kubetune's own keys always win.
    labels = dict(metadata.get("labels") or {})
    labels.update(trial_labels(sweep.name, trial))
    if spec.queue_name is not None:
        labels[conventions.LABEL_KUEUE_QUEUE] = spec.queue_name
    annotations = dict(metadata.get("annotations") or {})
    annotations.update(
        {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": spec.metrics.scrape.path,
            ATTEMPT_ANNOTATION: str(attempt),
            CONTAINER_ANNOTATION: str(container.get("name", "")),
        }
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": trial,
            "namespace": sweep.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": pod_spec,
    }
    if at is not None:
        enforce_policy(pod, policy, at=at)
    else:
        enforce_policy(pod, policy, field=trainer_field)
    return pod


# Where a trainer pod's fields come from in the sweep: a refusal names what the user wrote.
_TRAINER_POD_PATHS = (
    ("spec.volumes", "spec.trainer.volumes"),
    ("spec.serviceAccountName", "spec.trainer.serviceAccountName"),
    ("spec.automountServiceAccountToken", "spec.trainer.serviceAccountName"),
    ("metadata.annotations", "spec.trainer.annotations"),
    ("spec.containers[0].volumeMounts", "spec.trainer.volumeMounts"),
)


def trainer_field(pod_path: str) -> str:
    """The sweep field behind `pod_path` of a trainer pod (the pod path when none is)."""
    for prefix, field in _TRAINER_POD_PATHS:
        if pod_path == prefix or pod_path.startswith((f"{prefix}.", f"{prefix}[")):
            return field + pod_path[len(prefix) :]
    return pod_path


def trainer_pod_parts(
    trainer: TrainerSpec, default_image: str | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The pod spec, metadata and container the trainer block makes (no trial contract):
    also the start of the sweep's prefetch pod (builders/prefetch.py)."""
    return _from_trainer(trainer, default_image)


def _from_trainer(
    trainer: TrainerSpec, default_image: str | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    image = trainer.image or default_image
    if not image:
        raise BuildError(
            "spec.trainer.image",
            f"not set, and the operator has no default ({conventions.ENV_DEFAULT_TRAINER_IMAGE})",
        )
    container: dict[str, Any] = {
        "name": TRAINER_CONTAINER,
        "image": image,
        "command": trainer_command(trainer.processes()),
        "env": [var.model_dump(by_alias=True, exclude_none=True) for var in trainer.env],
    }
    if trainer.resources is not None:
        container["resources"] = trainer.resources.model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
    if trainer.gpus is not None and trainer.gpus > 1:
        # Without the limit the device plugin gives the container no GPU at all, and the
        # processes would quietly train on the CPU.
        limits = container.setdefault("resources", {}).setdefault("limits", {})
        limits.setdefault(GPU_RESOURCE, trainer.gpus)
    pod_spec: dict[str, Any] = {"containers": [container]}
    for name in _TRAINER_POD_SPEC_FIELDS:
        value = getattr(trainer, name)
        if value is not None:
            alias = TrainerSpec.model_fields[name].alias or name
            pod_spec[alias] = _dump(value)
    volumes = list(pod_spec.pop("volumes", []))
    mounts = [m.model_dump(by_alias=True, exclude_none=True) for m in trainer.volume_mounts or []]
    if trainer.shm_size is not None:
        volumes.append(
            {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": trainer.shm_size}}
        )
        mounts.append({"name": SHM_VOLUME, "mountPath": SHM_PATH})
    if trainer.cache is not None:
        # One Hugging Face cache for every trial: the model is downloaded once, not per pod.
        volumes.append(trainer.cache.pod_volume())
        mounts.append({"name": conventions.HF_CACHE_VOLUME, "mountPath": conventions.HF_CACHE_PATH})
        container["env"].append(
            {"name": conventions.ENV_HF_HOME, "value": conventions.HF_CACHE_PATH}
        )
    if volumes:
        pod_spec["volumes"] = volumes
    if mounts:
        container["volumeMounts"] = mounts
    metadata: dict[str, Any] = {}
    if trainer.labels:
        metadata["labels"] = dict(trainer.labels)
    if trainer.annotations:
        metadata["annotations"] = dict(trainer.annotations)
    return pod_spec, metadata, container


# TrainerSpec fields that go on the PodSpec as they are, under their own (Kubernetes) name;
# the others need kubetune's part added (volumes, mounts, metadata).
_TRAINER_POD_SPEC_FIELDS = sorted(
    POD_FIELDS - {"volume_mounts", "labels", "annotations", "shm_size", "cache"}
)


def _dump(value: Any) -> Any:
    """A spec value as plain JSON data, copied: the pod never shares the spec's objects."""
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    return copy.deepcopy(value)


def _from_template(
    spec: SweepSpec, params: Mapping[str, ParamValue], names: TrialNames
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    assert spec.template is not None
    index = template_container_index(spec.template)
    pod_spec = copy.deepcopy(spec.template.spec)
    metadata = copy.deepcopy(spec.template.metadata or {})
    for kind in ("initContainers", "containers"):
        for position, item in enumerate(pod_spec.get(kind) or []):
            if not isinstance(item, dict):
                raise BuildError(f"spec.template.spec.{kind}[{position}]", "must be a mapping")
            field = f"spec.template.spec.{kind}[{position}]"
            substitute_container(item, params, field, names)
    return pod_spec, metadata, pod_spec["containers"][index]


def _ensure_metrics_port(container: dict[str, Any], port: int) -> None:
    ports = container.setdefault("ports", [])
    if any(p.get("name") == METRICS_PORT_NAME for p in ports):
        return
    same = [p for p in ports if p.get("containerPort") == port]
    if same:
        # Name it for Prometheus, but never rename a port the user already named.
        for p in same:
            p.setdefault("name", METRICS_PORT_NAME)
        return
    ports.append({"name": METRICS_PORT_NAME, "containerPort": port, "protocol": "TCP"})
