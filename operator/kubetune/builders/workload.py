"""Trial workloads: one sweep + one trial's parameters -> a batch/v1 Job (a plain dict).

The Job's pod template gets exactly what a template trial's pod gets (the trial contract,
hardening, the admin pod policy, labels, the attempt annotation), so the pod the Job
controller makes is judged like any trial pod. Pure: the handler adds the owner reference.
"""

from collections.abc import Mapping
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import ATTEMPT_ANNOTATION
from kubetune.builders.errors import BuildError
from kubetune.builders.pod import assemble_trial_pod, build_trial_pod, trial_labels
from kubetune.builders.substitute import ParamValue, TrialNames, substitute_tree
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SweepSpec
from kubetune.spec.workload_rules import (
    TEMPLATE_FIELD,
    WORKLOAD_FIELD,
    primary_container_index,
    shape_problems,
)


def build_trial_workload(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    number: int,
    params: Mapping[str, ParamValue],
    *,
    attempt: int = 1,
    policy: PodPolicy | None = None,
) -> dict[str, Any]:
    """The Job for trial `number` of `sweep`; `spec` is the effective spec.

    Raises BuildError naming the field under spec.workload when the object cannot make a
    trial, or PolicyRefused when its pod template asks for more than `policy` allows.
    """
    assert spec.workload is not None
    trial = conventions.trial_name(sweep.name, number)
    names = TrialNames(sweep=sweep.name, trial=trial, number=number)
    problems = shape_problems(spec.workload)
    if problems:  # the shape, before anything is substituted into it
        field, rule = problems[0].split(": ", 1)
        raise BuildError(field, rule)
    obj: dict[str, Any] = substitute_tree(spec.workload.object, params, WORKLOAD_FIELD, names)
    job_spec: dict[str, Any] = obj["spec"]
    template: dict[str, Any] = job_spec["template"]
    pod_spec: dict[str, Any] = template["spec"]
    container = pod_spec["containers"][primary_container_index(spec.workload)]
    pod = assemble_trial_pod(
        sweep,
        spec,
        trial,
        params,
        pod_spec,
        dict(template.get("metadata") or {}),
        container,
        attempt,
        policy,
        f"{TEMPLATE_FIELD}.",
    )
    pod_meta = pod["metadata"]
    # The Job controller names its pods, and Kueue admits the Job: its pods carry no queue
    # label (Kueue's pod integration would otherwise gate them a second time).
    pod_meta.pop("name", None)
    pod_meta.pop("namespace", None)
    pod_meta["labels"].pop(conventions.LABEL_KUEUE_QUEUE, None)
    job_spec["template"] = {"metadata": pod_meta, "spec": pod["spec"]}
    # A trial runs once: Job retries would rerun it behind kubetune's back (kubetune requeues
    # a disrupted trial itself, with budget.maxRequeues), and blur its result.
    job_spec["backoffLimit"] = 0
    # budget.trialTimeout is the pod's activeDeadlineSeconds (one judgment, on the pod); a
    # Job-level deadline would delete the pod and look like a disruption.
    job_spec.pop("activeDeadlineSeconds", None)
    meta = dict(obj.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    labels.update(trial_labels(sweep.name, trial))
    annotations = dict(meta.get("annotations") or {})
    annotations[ATTEMPT_ANNOTATION] = str(attempt)
    if spec.queue_name is not None:
        labels[conventions.LABEL_KUEUE_QUEUE] = spec.queue_name
        # Kueue unsuspends the Job once its quota admits it.
        job_spec["suspend"] = True
    obj["metadata"] = {
        **{k: v for k, v in meta.items() if k not in ("generateName", "uid")},
        "name": trial,
        "namespace": sweep.namespace,
        "labels": labels,
        "annotations": annotations,
    }
    return obj


def build_trial(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    number: int,
    params: Mapping[str, ParamValue],
    *,
    attempt: int = 1,
    default_image: str | None = None,
    policy: PodPolicy | None = None,
) -> dict[str, Any]:
    """The object a trial runs as: a Job for spec.workload, else a Pod."""
    if spec.workload is not None:
        return build_trial_workload(sweep, spec, number, params, attempt=attempt, policy=policy)
    return build_trial_pod(
        sweep, spec, number, params, attempt=attempt, default_image=default_image, policy=policy
    )
