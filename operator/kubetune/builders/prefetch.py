"""The prefetch pod: downloads a sweep's hub model (and dataset) into trainer.cache once,
before the first trial, so that parallel trials never download at the same time.

Pure: sweep in, Pod manifest out. It is the trainer block's own pod (image, env and
secrets such as HF_TOKEN, the cache volume, placement, the admin pod policy) running
`python -m kubetune_trainer prefetch` instead of a trial, without GPUs, and labelled as
the sweep's `prefetch` component, never as a trial.
"""

from typing import Any

from kubetune import conventions
from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    CONTAINER_ANNOTATION,
    trainer_command,
    trainer_config,
)
from kubetune.builders.errors import BuildError
from kubetune.builders.pod import trainer_field, trainer_pod_parts
from kubetune.builders.security import enforce_policy, harden_pod_spec
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SweepSpec

# One process: a download needs no torchrun.
PREFETCH_COMMAND = [*trainer_command(1), "prefetch"]


def prefetch_labels(sweep: str) -> dict[str, str]:
    return {
        conventions.LABEL_SWEEP: sweep,
        conventions.LABEL_MANAGED_BY: conventions.MANAGED_BY,
        conventions.LABEL_COMPONENT: conventions.COMPONENT_PREFETCH,
    }


def _without_extended(resources: dict[str, Any]) -> dict[str, Any]:
    """cpu, memory and ephemeral storage only: a download needs no GPU (nor any device
    plugin's resource, all of which are named domain/name)."""
    kept: dict[str, Any] = {}
    for kind in ("requests", "limits"):
        amounts = {k: v for k, v in (resources.get(kind) or {}).items() if "/" not in k}
        if amounts:
            kept[kind] = amounts
    return kept


def build_prefetch_pod(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    generation: int,
    *,
    default_image: str | None = None,
    policy: PodPolicy | None = None,
) -> dict[str, Any]:
    """The prefetch pod of `sweep` for spec `generation` (its attempt annotation, so that a
    failed prefetch is retried after an edit and only then). BuildError when the trainer
    block cannot make a pod, PolicyRefused when the pod policy refuses it."""
    if spec.trainer is None or spec.trainer.cache is None:
        raise BuildError("spec.trainer.cache", "a prefetch needs trainer.cache")
    pod_spec, metadata, container = trainer_pod_parts(spec.trainer, default_image)
    container["command"] = list(PREFETCH_COMMAND)
    container["env"].append(
        {"name": conventions.ENV_TRAINER_CONFIG, "value": trainer_config(spec.trainer)}
    )
    secrets = spec.trainer.secret_env_names()
    if secrets:
        container["env"].append({"name": conventions.ENV_SECRET_ENV, "value": ",".join(secrets)})
    resources = _without_extended(container.pop("resources", None) or {})
    if resources:
        container["resources"] = resources
    container["terminationMessagePath"] = conventions.DEFAULT_TERMINATION_LOG
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    policy = policy or PodPolicy()
    harden_pod_spec(pod_spec, policy)
    pod_spec["restartPolicy"] = "Never"
    # A stuck download fails the sweep (model_cache: PrefetchFailed) instead of holding it.
    pod_spec["activeDeadlineSeconds"] = spec.trainer.cache.prefetch_timeout_seconds()
    labels = dict(metadata.get("labels") or {})
    labels.update(prefetch_labels(sweep.name))
    annotations = dict(metadata.get("annotations") or {})
    annotations[ATTEMPT_ANNOTATION] = str(generation)
    annotations[CONTAINER_ANNOTATION] = str(container.get("name", ""))
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": conventions.prefetch_name(sweep.name),
            "namespace": sweep.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": pod_spec,
    }
    enforce_policy(pod, policy, field=trainer_field)
    return pod
