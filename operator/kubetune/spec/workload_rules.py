"""What a sweep's workload object must be to run as trials (pure, no I/O).

Shared by `kubetune validate`, the operator's accept and the workload builder, so each
names the same field for the same mistake.
"""

import re
from collections.abc import Mapping
from typing import Any

from kubetune.builders.substitute import tree_placeholders, unknown_placeholder
from kubetune.spec import trainjob
from kubetune.spec.trainer import WorkloadSpec
from kubetune.spec.workload_kinds import (
    JOB,
    KINDS,
    TRAINJOB,
    WorkloadKind,
    custom_kind,
    kind_of,
)

# Where the object sits in the sweep: every problem names a field under it.
WORKLOAD_FIELD = "spec.workload.object"
# The batch/v1 Job's pod template (the field a Job's problems name).
TEMPLATE_FIELD = f"{WORKLOAD_FIELD}.spec.template"
# A custom resource's apiVersion (group/version) and kind, as Kubernetes names them.
_API_VERSION = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/v[0-9]+((alpha|beta)[0-9]+)?$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")
# Deeper than any pod template path can be written (status_match.MAX_SEGMENTS names, each
# with a few list indices): a pod spec below this is refused unseen.
_MAX_DEPTH = 48


def is_job(obj: Mapping[str, Any]) -> bool:
    return kind_of(obj) is JOB


def shape_problems(workload: WorkloadSpec) -> list[str]:
    """The object is a supported kind with pod templates, and primaryPod names a container
    of its primary pod's template (the first problem only: the later ones would follow)."""
    obj = workload.object
    if workload.trainer_job is not None and not trainjob.is_trainjob(obj):
        return ["spec.workload.trainerJob: only for a trainer.kubeflow.org TrainJob (remove it)"]
    if trainjob.is_trainjob(obj):
        return _trainjob_problems(workload)
    kind = kind_of(obj)
    if kind is None:
        problems = _custom_problems(workload)
        if problems:
            return problems
        kind = workload_kind(workload)
    else:
        field = _custom_only_field(workload)
        if field is not None:
            return [
                f"spec.workload.{field}: only for a kind kubetune does not know; it reads "
                f"a {kind.api_version} {kind.kind}'s own (remove it)"
            ]
    if not isinstance(obj.get("spec"), dict):
        return [f"{WORKLOAD_FIELD}.spec: required: the {kind.kind}'s spec"]
    templates = kind.templates(obj)
    if kind.custom:
        missing = [p for p in workload.pod_templates if p not in dict(templates)]
        if missing:
            return [
                f"spec.workload.podTemplates: {missing[0]} is no pod template (a mapping) in "
                f"{WORKLOAD_FIELD}"
            ]
        # A pod spec left out would reach the cluster without kubetune's labels, hardening
        # or the admin pod policy: every one must be a listed template's.
        listed = {f"{path}.spec" for path in workload.pod_templates}
        for pod_spec in pod_spec_paths(obj):
            if pod_spec not in listed:
                return [
                    f"{WORKLOAD_FIELD}.{pod_spec}: a pod spec (it lists containers) outside the "
                    "pod templates in spec.workload.podTemplates: list its template there, so "
                    "the pod policy reaches it"
                ]
    if not templates:
        where = {"Job": "spec.template", "JobSet": "spec.replicatedJobs[].template.spec.template"}
        path = where.get(kind.kind, "spec.pytorchReplicaSpecs.<type>.template")
        return [f"{WORKLOAD_FIELD}.{path}: required: a pod template with a spec"]
    for path, template in templates:
        at = f"{WORKLOAD_FIELD}.{path}"
        if not isinstance(template.get("spec"), dict):
            return [f"{at}: required: a pod template with a spec"]
        containers = template["spec"].get("containers")
        if not isinstance(containers, list) or not containers:
            return [f"{at}.spec.containers: must list at least one container"]
        if not all(isinstance(c, dict) and c.get("name") for c in containers):
            return [f"{at}.spec.containers: every container needs a name"]
    path, primary = templates[kind.primary(obj)]
    wanted = workload.primary_pod.container
    names = [str(c["name"]) for c in primary["spec"]["containers"]]
    if wanted is not None and wanted not in names:
        return [
            f"spec.workload.primaryPod.container: no container named {wanted!r} in "
            f"{WORKLOAD_FIELD}.{path}.spec.containers (have {', '.join(names)})"
        ]
    return []


def _custom_only_field(workload: WorkloadSpec) -> str | None:
    """The first field given that only a kind kubetune does not know may have, or None."""
    for field, given in (
        ("podTemplates", workload.pod_templates),
        ("successCondition", workload.success_condition),
        ("failureCondition", workload.failure_condition),
        ("primaryPod.labels", workload.primary_pod.labels),
    ):
        if given:
            return field
    return None


def _trainjob_problems(workload: WorkloadSpec) -> list[str]:
    """A TrainJob: the released v1alpha1 shape (spec/trainjob.py), none of the fields for
    kinds kubetune does not know, and the trial container is the Trainer's `node`."""
    field = _custom_only_field(workload)
    if field is not None:
        return [
            f"spec.workload.{field}: only for a kind kubetune does not know; it reads a "
            f"TrainJob's own conditions and finds pod 0 of its trainer job itself (remove it)"
        ]
    wanted = workload.primary_pod.container
    if wanted not in (None, trainjob.TRAINER_CONTAINER):
        return [
            f"spec.workload.primaryPod.container: a TrainJob's trial container is "
            f"{trainjob.TRAINER_CONTAINER!r}, the one spec.trainer reaches (got {wanted!r})"
        ]
    return trainjob.spec_problems(workload.object, WORKLOAD_FIELD, trainer_job(workload))


def trainer_job(workload: WorkloadSpec) -> str:
    """The TrainJob's trainer job name (spec.workload.trainerJob, default `node`)."""
    return workload.trainer_job or trainjob.TRAINER_JOB


def is_trainjob(workload: WorkloadSpec) -> bool:
    return kind_of(workload.object) is TRAINJOB


def pod_spec_paths(obj: Mapping[str, Any]) -> list[str]:
    """The field path of every mapping under the object's spec that lists containers (a pod
    spec), in the object's order; depth is bounded by the API server's nesting limit."""
    found: list[str] = []

    def walk(value: Any, path: str, depth: int) -> None:
        if depth > _MAX_DEPTH:
            found.append(path)  # too deep to check: reported, never let through
            return
        if isinstance(value, dict):
            if isinstance(value.get("containers"), list):
                found.append(path)
            for key, item in value.items():
                walk(item, f"{path}.{key}", depth + 1)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]", depth + 1)

    walk(obj.get("spec"), "spec", 1)
    return found


def _custom_problems(workload: WorkloadSpec) -> list[str]:
    """What a kind kubetune does not know needs: an apiVersion with a group (a custom
    resource), where its pod templates are, and when it succeeded and failed."""
    obj = workload.object
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    known = ", ".join(f"{k.api_version} {k.kind}" for k in KINDS.values())
    if not (isinstance(api_version, str) and _API_VERSION.match(api_version)):
        return [
            f"{WORKLOAD_FIELD}.apiVersion: must be group/version of a custom resource "
            f"(e.g. example.com/v1), or one of the known kinds {known} (got {api_version!r})"
        ]
    if not (isinstance(kind, str) and _KIND.match(kind)):
        return [f"{WORKLOAD_FIELD}.kind: must be a kind name such as MyJob (got {kind!r})"]
    needs = f"{api_version} {kind} is a kind kubetune does not know (it knows {known})"
    if not workload.pod_templates:
        return [
            f"spec.workload.podTemplates: required: {needs}: the field paths of its pod "
            "templates, e.g. spec.template"
        ]
    for field, given in (
        ("successCondition", workload.success_condition),
        ("failureCondition", workload.failure_condition),
    ):
        if given is None:
            return [
                f"spec.workload.{field}: required: {needs}: e.g. {{type: Complete}} (a status "
                "condition) or {field: status.phase, equals: Succeeded}"
            ]
    if len(workload.pod_templates) > 1 and not workload.primary_pod.labels:
        return [
            "spec.workload.primaryPod.labels: required with more than one pod template: the "
            "labels only the primary pod has, as the kind's controller sets them"
        ]
    return []


def workload_kind(workload: WorkloadSpec) -> WorkloadKind:
    """The object's kind (call after shape_problems found none)."""
    kind = kind_of(workload.object)
    if kind is not None:
        return kind
    assert workload.success_condition is not None and workload.failure_condition is not None
    return custom_kind(
        workload.object,
        workload.pod_templates,
        workload.primary_pod.labels,
        workload.success_condition,
        workload.failure_condition,
    )


def pod_template(workload: WorkloadSpec) -> dict[str, Any]:
    """The primary pod's template as written (call after shape_problems found none)."""
    kind = workload_kind(workload)
    return kind.templates(workload.object)[kind.primary(workload.object)][1]


def container_index(workload: WorkloadSpec, template: Mapping[str, Any]) -> int:
    """The trial's container in a pod template: primaryPod.container where the template
    has one of that name, else its first."""
    names = [c["name"] for c in template["spec"]["containers"]]
    wanted = workload.primary_pod.container
    return names.index(wanted) if wanted in names else 0


def primary_template_field(workload: WorkloadSpec) -> str:
    """Where the primary pod's template is in the sweep."""
    kind = workload_kind(workload)
    return f"{WORKLOAD_FIELD}.{kind.templates(workload.object)[kind.primary(workload.object)][0]}"


def primary_container_index(workload: WorkloadSpec) -> int:
    return container_index(workload, pod_template(workload))


def workload_problems(
    workload: WorkloadSpec, parameters: list[str], *, for_cluster: bool = True
) -> list[str]:
    """Every problem of the workload, each naming its field path."""
    problems = shape_problems(workload)
    if problems:
        return problems
    problems += [
        f"{path}: {unknown_placeholder(name, parameters)}"
        for path, name in tree_placeholders(workload.object, WORKLOAD_FIELD)
        if name not in parameters
    ]
    if for_cluster:
        kind_ = workload_kind(workload)
        for path, template in kind_.templates(workload.object):
            spec = template["spec"]
            for kind in ("initContainers", "containers"):
                for index, container in enumerate(spec.get(kind) or []):
                    image = container.get("image") if isinstance(container, dict) else None
                    if not (isinstance(image, str) and image.strip()):
                        problems.append(
                            f"{WORKLOAD_FIELD}.{path}.spec.{kind}[{index}].image: required"
                        )
    return problems


def used_parameters(workload: WorkloadSpec) -> set[str]:
    return {name for _, name in tree_placeholders(workload.object, WORKLOAD_FIELD)}
