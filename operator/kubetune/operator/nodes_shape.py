"""What a trainer.nodes trial runs as: a JobSet where that API is installed, else an Indexed
Job with the sweep's headless Service (builders/nodes.py builds both).

Chosen once per sweep, when its first multi-node trial is created, from the operator's
--nodes-workload setting (jobset, job, or auto: discovery of jobset.x-k8s.io/v1alpha2), and
recorded on the sweep (NODES_WORKLOAD_ANNOTATION) before that trial is created, so an
operator restart, or a JobSet installed or removed meanwhile, never changes the shape of a
running sweep's trials (a requeued trial is found and deleted by the kind it was made as).
"""

from collections.abc import Mapping
from typing import Any, Final

from kubetune.builders.nodes import JOBSET_REPLICATED_JOB, RENDEZVOUS_ANNOTATION, as_jobset
from kubetune.operator.kube import ApiError, KubeClient
from kubetune.spec.workload_kinds import JOB, JOBSET

# On the HyperparameterSweep: the kind its trainer.nodes trials are made as.
NODES_WORKLOAD_ANNOTATION: Final = "kubetune.dev/nodes-workload"
SHAPES: Final = {"jobset": JOBSET.kind, "job": JOB.kind}
HOSTNAME_MAX: Final = 63  # a pod hostname is a DNS label


def is_nodes_job(manifest: Mapping[str, Any]) -> bool:
    """build_nodes_job's Indexed Job (it carries the headless Service it needs)."""
    meta = manifest.get("metadata") or {}
    return manifest.get("kind") == JOB.kind and RENDEZVOUS_ANNOTATION in (
        meta.get("annotations") or {}
    )


def recorded(sweep_meta: Mapping[str, Any]) -> str | None:
    """The kind recorded on the sweep, if it is one of ours (anything else is decided anew)."""
    value = (sweep_meta.get("annotations") or {}).get(NODES_WORKLOAD_ANNOTATION)
    return value if value in SHAPES.values() else None


def fits_jobset(job: Mapping[str, Any]) -> bool:
    """Whether the JobSet's pod hostnames (`<trial>-node-0-<index>`, 7 characters longer than
    the Indexed Job's `<trial>-<index>`, which spec checks bound) are DNS labels."""
    last = int(job["spec"]["completions"]) - 1
    return len(f"{job['metadata']['name']}-{JOBSET_REPLICATED_JOB}-0-{last}") <= HOSTNAME_MAX


async def choose(kube: KubeClient, setting: str, job: Mapping[str, Any]) -> str:
    """JobSet or Job for a sweep that has none recorded yet (setting: auto, jobset or job);
    `job` is its first trial's Indexed Job. auto takes the Job where JobSet's longer pod
    names would not fit."""
    if setting in SHAPES:
        return SHAPES[setting]
    if not fits_jobset(job):
        return JOB.kind
    try:
        served = await kube.resource_plural(JOBSET.group, JOBSET.version, JOBSET.kind)
    except ApiError:
        served = None  # discovery failing: the shape that needs nothing beyond Kubernetes
    return JOBSET.kind if served is not None else JOB.kind


def shaped(manifest: dict[str, Any], kind: str) -> dict[str, Any]:
    """The trial's manifest as the chosen kind (build_trial makes the Indexed Job)."""
    return as_jobset(manifest) if kind == JOBSET.kind else manifest
