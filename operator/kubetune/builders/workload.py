"""Trial workloads: one sweep + one trial's parameters -> a Job, JobSet, PyTorchJob or
TrainJob (a plain dict; spec/workload_kinds.py says where each kind keeps its pod templates;
a TrainJob has none: builders/trainjob.py).

Every pod template inside gets exactly what a template trial's pod gets (the trial contract,
hardening, the admin pod policy, labels, the attempt annotation), so every pod the kind's
controller makes is a trial pod, and its primary pod is judged like any trial pod. Pure:
the handler adds the owner reference.
"""

from collections.abc import Mapping
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    PRIMARY_ANNOTATION,
    WORKLOAD_ANNOTATION,
)
from kubetune.builders.errors import BuildError
from kubetune.builders.nodes import build_nodes_job, nodes_of
from kubetune.builders.pod import assemble_trial_pod, build_trial_pod, trial_labels
from kubetune.builders.substitute import ParamValue, TrialNames, substitute_tree
from kubetune.builders.trainjob import build_trainjob
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SweepSpec
from kubetune.spec.workload_kinds import TRAINJOB, selector_text
from kubetune.spec.workload_rules import (
    WORKLOAD_FIELD,
    container_index,
    shape_problems,
    workload_kind,
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
    """The workload object for trial `number` of `sweep`; `spec` is the effective spec.

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
    kind = workload_kind(spec.workload)
    if kind is TRAINJOB:
        build_trainjob(sweep, spec, trial, params, obj, attempt, policy)
    primary = kind.primary_labels(obj)
    for path, template in kind.templates(obj):
        pod_spec: dict[str, Any] = template["spec"]
        container = pod_spec["containers"][container_index(spec.workload, template)]
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
            f"{WORKLOAD_FIELD}.{path}.",
        )
        pod_meta = pod["metadata"]
        # The workload's controller names its pods, and Kueue admits the workload: its pods
        # carry no queue label (Kueue's pod integration would otherwise gate them again).
        pod_meta.pop("name", None)
        pod_meta.pop("namespace", None)
        pod_meta["labels"].pop(conventions.LABEL_KUEUE_QUEUE, None)
        if primary:
            pod_meta["annotations"][PRIMARY_ANNOTATION] = selector_text(primary)
        if primary or kind.custom:
            # Which object the pod's trial is (its controller may not be the pod's owner).
            pod_meta["annotations"][WORKLOAD_ANNOTATION] = f"{kind.api_version}/{kind.kind}"
        # Replace the template's contents in place: it sits inside `obj`.
        template.clear()
        template.update({"metadata": pod_meta, "spec": pod["spec"]})
    # A trial runs once: the workload's own retries would rerun it behind kubetune's back
    # (kubetune requeues a disrupted trial itself, with budget.maxRequeues) and blur its
    # result.
    kind.run_once(obj)
    meta = dict(obj.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    labels.update(trial_labels(sweep.name, trial))
    annotations = dict(meta.get("annotations") or {})
    annotations[ATTEMPT_ANNOTATION] = str(attempt)
    if spec.queue_name is not None:
        labels[conventions.LABEL_KUEUE_QUEUE] = spec.queue_name
        # Kueue unsuspends the workload once its quota admits it.
        kind.suspend(obj)
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
    """The object a trial runs as: spec.workload's object, trainer.nodes > 1's Indexed Job,
    else a Pod."""
    if spec.workload is not None:
        return build_trial_workload(sweep, spec, number, params, attempt=attempt, policy=policy)
    if nodes_of(spec) > 1:
        return build_nodes_job(
            sweep,
            spec,
            number,
            params,
            attempt=attempt,
            default_image=default_image,
            policy=policy,
        )
    return build_trial_pod(
        sweep, spec, number, params, attempt=attempt, default_image=default_image, policy=policy
    )
