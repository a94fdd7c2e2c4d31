"""What a sweep's workload object must be to run as trials (pure, no I/O).

Shared by `kubetune validate`, the operator's accept and the workload builder, so each
names the same field for the same mistake.
"""

from collections.abc import Mapping
from typing import Any

from kubetune.builders.substitute import tree_placeholders, unknown_placeholder
from kubetune.spec.trainer import WorkloadSpec
from kubetune.spec.workload_kinds import JOB, KINDS, UNSUPPORTED, WorkloadKind, kind_of

# Where the object sits in the sweep: every problem names a field under it.
WORKLOAD_FIELD = "spec.workload.object"
# The batch/v1 Job's pod template (the field a Job's problems name).
TEMPLATE_FIELD = f"{WORKLOAD_FIELD}.spec.template"


def is_job(obj: Mapping[str, Any]) -> bool:
    return kind_of(obj) is JOB


def shape_problems(workload: WorkloadSpec) -> list[str]:
    """The object is a supported kind with pod templates, and primaryPod names a container
    of its primary pod's template (the first problem only: the later ones would follow)."""
    obj = workload.object
    found = (str(obj.get("apiVersion")), str(obj.get("kind")))
    if found in UNSUPPORTED:
        return [f"{WORKLOAD_FIELD}.kind: {found[1]} is not supported: {UNSUPPORTED[found]}"]
    kind = kind_of(obj)
    if kind is None:
        known = ", ".join(f"{k.api_version} {k.kind}" for k in KINDS.values())
        return [f"{WORKLOAD_FIELD}.kind: must be one of {known} (got {found[0]}/{found[1]})"]
    if not isinstance(obj.get("spec"), dict):
        return [f"{WORKLOAD_FIELD}.spec: required: the {kind.kind}'s spec"]
    templates = kind.templates(obj)
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


def workload_kind(workload: WorkloadSpec) -> WorkloadKind:
    """The object's kind (call after shape_problems found none)."""
    kind = kind_of(workload.object)
    assert kind is not None
    return kind


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
