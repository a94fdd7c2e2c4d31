"""The tidy pod: when a sweep ends, removes its pruned and failed trials' checkpoints from
trainer.outputDir per keepCheckpoints (`python -m kubetune_trainer tidy`).

Such a trial was stopped by SIGTERM, which it cannot tell from a preemption, so it kept a
checkpoint to resume from; only a pod with the trials' volumes can reach it, and the
operator never mounts a tenant's volume. Pure: sweep in, Pod manifest out. The trainer
block's own pod (image, volumes, placement, hardening, the admin pod policy) without GPUs,
labelled as kubetune's but with no sweep label: no trial, never watched; best effort (its
log says what it removed).
"""

from collections.abc import Sequence
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import trainer_command, trainer_config
from kubetune.builders.errors import BuildError
from kubetune.builders.pod import trainer_field, trainer_pod_parts
from kubetune.builders.prefetch import _without_extended
from kubetune.builders.security import enforce_policy, harden_pod_spec
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SweepSpec

TIDY_COMMAND = [*trainer_command(1), "tidy"]
# Removing folders takes seconds; a pod stuck on its volume must not linger for ever.
TIDY_DEADLINE_SECONDS = 600


def needs_tidy(spec: SweepSpec) -> bool:
    """Whether ended trials may have left checkpoints that keepCheckpoints does not keep."""
    trainer = spec.trainer
    return (
        trainer is not None
        and bool(trainer.output_dir)
        and trainer.keep_checkpoints != "all"
        and trainer.mode == "train"
    )


def build_tidy_pod(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    trials: Sequence[str],
    *,
    default_image: str | None = None,
    policy: PodPolicy | None = None,
) -> dict[str, Any]:
    """The tidy pod of `sweep` for `trials` (their names); BuildError / PolicyRefused as
    for a trial pod."""
    if spec.trainer is None or not needs_tidy(spec):
        raise BuildError("spec.trainer.outputDir", "nothing to tidy without an outputDir")
    pod_spec, metadata, container = trainer_pod_parts(spec.trainer, default_image)
    container["command"] = list(TIDY_COMMAND)
    container["env"] += [
        {"name": conventions.ENV_TRAINER_CONFIG, "value": trainer_config(spec.trainer)},
        {"name": conventions.ENV_SWEEP, "value": sweep.name},
        {"name": conventions.ENV_TIDY_TRIALS, "value": ",".join(trials)},
    ]
    resources = _without_extended(container.pop("resources", None) or {})
    if resources:
        container["resources"] = resources
    policy = policy or PodPolicy()
    harden_pod_spec(pod_spec, policy)
    pod_spec["restartPolicy"] = "Never"
    pod_spec["activeDeadlineSeconds"] = TIDY_DEADLINE_SECONDS
    labels = dict(metadata.get("labels") or {})
    labels.pop(conventions.LABEL_SWEEP, None)
    labels.update(
        {
            conventions.LABEL_MANAGED_BY: conventions.MANAGED_BY,
            conventions.LABEL_COMPONENT: conventions.COMPONENT_TIDY,
        }
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": conventions.tidy_name(sweep.name),
            "namespace": sweep.namespace,
            "labels": labels,
            "annotations": dict(metadata.get("annotations") or {}),
        },
        "spec": pod_spec,
    }
    enforce_policy(pod, policy, field=trainer_field)
    return pod
