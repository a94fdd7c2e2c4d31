"""A trial as a Kubeflow Trainer TrainJob (trainer.kubeflow.org/v1alpha1): pure.

A TrainJob has no pod template; spec/trainjob.py says what of it reaches the pods. kubetune
puts the trial contract into spec.trainer.env (container `node`) and appends one
podTemplateOverrides entry for the trainer job with the labels and annotations every trial
pod carries (later entries win, so they beat the user's own). The admin pod policy reaches
only what the TrainJob itself adds (each override's volumes, ServiceAccount, ...); the
runtime's templates must be ones the admin vouches for (policy.trainingRuntimes) unless the
policy level is privileged.
"""

import copy
from collections.abc import Mapping
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    CONTAINER_ANNOTATION,
    PRIMARY_ANNOTATION,
    WORKLOAD_ANNOTATION,
)
from kubetune.builders.pod import metrics_port, pod_env, trial_labels
from kubetune.builders.security import PolicyRefused, harden_pod_spec
from kubetune.builders.substitute import ParamValue
from kubetune.policy.pod_policy import PodPolicy, policy_problems
from kubetune.spec import HyperparameterSweep, SweepSpec, trainjob
from kubetune.spec.workload_kinds import (
    JOB_COMPLETION_INDEX,
    JOBSET_JOB_INDEX,
    JOBSET_REPLICATED_JOB,
    TRAINJOB,
    selector_text,
)
from kubetune.spec.workload_rules import WORKLOAD_FIELD, trainer_job


def primary_labels(job: str) -> dict[str, str]:
    """Pod 0 of the trainer job `job`: replica 0 of it (the Trainer makes one), completion
    index 0 of its Indexed Job (the rank-0 node of the Kubeflow torch runtimes)."""
    return {JOBSET_REPLICATED_JOB: job, JOBSET_JOB_INDEX: "0", JOB_COMPLETION_INDEX: "0"}


def build_trainjob(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    trial: str,
    params: Mapping[str, ParamValue],
    obj: dict[str, Any],
    attempt: int,
    policy: PodPolicy | None,
) -> dict[str, Any]:
    """Fill in the (substituted, shape-checked) TrainJob `obj` for `trial`, in place; its
    metadata (name, labels, Kueue) is the caller's, as for every workload kind."""
    assert spec.workload is not None
    policy = policy or PodPolicy()
    enforce_trainjob_policy(obj, policy)
    job_spec: dict[str, Any] = obj["spec"]
    trainer: dict[str, Any] = job_spec.setdefault("trainer", {})
    port = metrics_port(spec)
    user_env = [
        var
        for var in trainer.get("env") or []
        if not conventions.is_kubetune_env(str(var.get("name", "")))
    ]
    # trainer.env reaches container `node` of the trainer job on every node.
    trainer["env"] = pod_env(sweep, trial, params, port) + user_env
    job = trainer_job(spec.workload)
    primary = primary_labels(job)
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": spec.metrics.scrape.path,
        ATTEMPT_ANNOTATION: str(attempt),
        CONTAINER_ANNOTATION: trainjob.TRAINER_CONTAINER,
        PRIMARY_ANNOTATION: selector_text(primary),
        WORKLOAD_ANNOTATION: f"{TRAINJOB.api_version}/{TRAINJOB.kind}",
    }
    # kubetune's own labels mark trial pods and the sweep's objects: only kubetune's entry
    # gives them (a user's on another job's pods, e.g. an initializer, would make that pod
    # look like the trial's; on spec.labels, the JobSet and Jobs like trial workloads).
    overrides = [
        _without_kubetune_labels(entry) for entry in job_spec.get("podTemplateOverrides") or []
    ]
    if isinstance(job_spec.get("labels"), dict):
        job_spec["labels"] = _kept(job_spec["labels"])
    overrides.append(
        {
            "targetJobs": [{"name": job}],
            "metadata": {"labels": trial_labels(sweep.name, trial), "annotations": annotations},
        }
    )
    job_spec["podTemplateOverrides"] = overrides
    return obj


_KUBETUNE_LABELS = (
    conventions.LABEL_SWEEP,
    conventions.LABEL_TRIAL,
    conventions.LABEL_KUEUE_QUEUE,
)


def _kept(labels: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in labels.items() if k not in _KUBETUNE_LABELS}


def _without_kubetune_labels(entry: dict[str, Any]) -> dict[str, Any]:
    meta = entry.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("labels"), dict):
        return entry
    return {**entry, "metadata": {**meta, "labels": _kept(meta["labels"])}}


def enforce_trainjob_policy(obj: Mapping[str, Any], policy: PodPolicy) -> None:
    """PolicyRefused unless the runtime is one the admin vouches for (or the level is
    privileged), and what each podTemplateOverrides entry adds meets the policy."""
    problems: list[str] = []
    kind, name = trainjob.runtime_ref(obj)
    if policy.level != "privileged" and (
        kind != "ClusterTrainingRuntime" or name not in policy.training_runtimes
    ):
        listed = ", ".join(policy.training_runtimes) or "none"
        problems.append(
            f"{WORKLOAD_FIELD}.spec.runtimeRef: refused by pod policy {policy.level}: the "
            f"trial's pods come from {kind} {name!r}, which kubetune cannot check; only a "
            f"ClusterTrainingRuntime in the policy's trainingRuntimes ({listed})"
        )
    overrides = (obj.get("spec") or {}).get("podTemplateOverrides") or []
    for index, entry in enumerate(overrides):
        pod_spec = copy.deepcopy(entry.get("spec") or {})
        pod_spec.setdefault("containers", [])
        # As a template's: kubetune's security defaults first (the runtime's own settings
        # are the admin's), so what is left is what the override itself asks for.
        harden_pod_spec(pod_spec, policy)
        at = f"{WORKLOAD_FIELD}.spec.podTemplateOverrides[{index}]."
        problems += policy_problems({"spec": pod_spec}, policy, at=at)
    if problems:
        raise PolicyRefused(problems)
