"""What a sweep's workload object must be to run as trials (pure, no I/O).

Shared by `kubetune validate`, the operator's accept and the workload builder, so each
names the same field for the same mistake.
"""

from collections.abc import Mapping
from typing import Any

from kubetune.builders.substitute import tree_placeholders, unknown_placeholder
from kubetune.spec.trainer import WorkloadSpec

JOB_API_VERSION = "batch/v1"
JOB_KIND = "Job"
# Where the object sits in the sweep: every problem names a field under it.
WORKLOAD_FIELD = "spec.workload.object"
TEMPLATE_FIELD = f"{WORKLOAD_FIELD}.spec.template"


def is_job(obj: Mapping[str, Any]) -> bool:
    return obj.get("apiVersion") == JOB_API_VERSION and obj.get("kind") == JOB_KIND


def shape_problems(workload: WorkloadSpec) -> list[str]:
    """The object is a batch/v1 Job with a pod template, and primaryPod names one of its
    containers (the first problem only: the later ones would follow from it)."""
    obj = workload.object
    if not is_job(obj):
        return [
            f"{WORKLOAD_FIELD}.kind: must be a batch/v1 Job (got {obj.get('apiVersion')}/"
            f"{obj.get('kind')}); other workload kinds are not supported yet"
        ]
    job_spec = obj.get("spec")
    if not isinstance(job_spec, dict):
        return [f"{WORKLOAD_FIELD}.spec: required: a JobSpec"]
    template = job_spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return [f"{TEMPLATE_FIELD}: required: a pod template with a spec"]
    containers = template["spec"].get("containers")
    if not isinstance(containers, list) or not containers:
        return [f"{TEMPLATE_FIELD}.spec.containers: must list at least one container"]
    if not all(isinstance(c, dict) and c.get("name") for c in containers):
        return [f"{TEMPLATE_FIELD}.spec.containers: every container needs a name"]
    wanted = workload.primary_pod.container
    names = [str(c["name"]) for c in containers]
    if wanted is not None and wanted not in names:
        return [
            f"spec.workload.primaryPod.container: no container named {wanted!r} in "
            f"{TEMPLATE_FIELD}.spec.containers (have {', '.join(names)})"
        ]
    return []


def pod_template(workload: WorkloadSpec) -> dict[str, Any]:
    """The Job's pod template as written (call after shape_problems found none)."""
    template: dict[str, Any] = workload.object["spec"]["template"]
    return template


def primary_container_index(workload: WorkloadSpec) -> int:
    containers = pod_template(workload)["spec"]["containers"]
    wanted = workload.primary_pod.container
    return 0 if wanted is None else [c["name"] for c in containers].index(wanted)


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
        spec = pod_template(workload)["spec"]
        for kind in ("initContainers", "containers"):
            for index, container in enumerate(spec.get(kind) or []):
                image = container.get("image") if isinstance(container, dict) else None
                if not (isinstance(image, str) and image.strip()):
                    problems.append(f"{TEMPLATE_FIELD}.spec.{kind}[{index}].image: required")
    return problems


def used_parameters(workload: WorkloadSpec) -> set[str]:
    return {name for _, name in tree_placeholders(workload.object, WORKLOAD_FIELD)}
