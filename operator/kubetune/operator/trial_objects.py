"""Creating, reading and deleting what a trial runs as: a Pod, or its workload object
(spec.workload: a batch/v1 Job, a JobSet, a PyTorchJob, a TrainJob, or a custom kind the sweep
describes, whose resource name is found by discovery; trainer.nodes: an Indexed Job)."""

import copy
from collections.abc import Mapping
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import ATTEMPT_ANNOTATION
from kubetune.builders.nodes import RENDEZVOUS_ANNOTATION, rendezvous_service
from kubetune.builders.pod import trial_selector
from kubetune.operator.kube import ApiError, KubeClient
from kubetune.operator.pod_state import PodView, job_view
from kubetune.spec.workload_kinds import KINDS, WorkloadKind, kind_of


def is_job(manifest: dict[str, Any]) -> bool:
    return kind_of(manifest) is not None


def _kind(api_version: str, kind: str, custom: WorkloadKind | None) -> WorkloadKind | None:
    known = KINDS.get((api_version, kind))
    if known is not None:
        return known
    if custom is not None and (custom.api_version, custom.kind) == (api_version, kind):
        return custom
    return None


async def plural_of(kube: KubeClient, kind: WorkloadKind) -> str:
    """The kind's resource name; a custom kind's by discovery (404 when none is served)."""
    if kind.plural:
        return kind.plural
    plural = await kube.resource_plural(kind.group, kind.version, kind.kind)
    if plural is None:
        raise ApiError(
            404,
            "NotFound",
            f"the cluster serves no {kind.api_version} {kind.kind} (is its CRD installed?)",
        )
    return plural


async def create_trial(
    kube: KubeClient, manifest: dict[str, Any], custom: WorkloadKind | None = None
) -> dict[str, Any] | None:
    """The created object, or None when one of that name already exists."""
    kind = _kind(str(manifest.get("apiVersion")), str(manifest.get("kind")), custom)
    if kind is None:
        return await kube.create_pod(manifest)
    meta = manifest["metadata"]
    service = (meta.get("annotations") or {}).get(RENDEZVOUS_ANNOTATION)
    if service is not None:
        # trainer.nodes: the sweep's headless Service, before the pods that rendezvous by
        # its DNS names; owned like the trial (by the sweep), so it goes with the sweep.
        body = rendezvous_service(meta["labels"][conventions.LABEL_SWEEP], meta["namespace"])
        body["metadata"]["ownerReferences"] = copy.deepcopy(meta.get("ownerReferences") or [])
        await kube.create_service(body)
    if kind.kind == "Job" and not kind.custom:
        return await kube.create_job(manifest)
    plural = await plural_of(kube, kind)
    return await kube.create_object(kind.group, kind.version, plural, manifest)


async def delete_trial(
    kube: KubeClient,
    namespace: str,
    name: str,
    uid: str,
    workload: str | None = None,
    attempt: int = 0,
    custom: WorkloadKind | None = None,
) -> None:
    """Stop a trial: its workload with its pods (foreground), or its pod.

    `workload` is the trial's apiVersion/kind (None: a plain pod). A JobSet's pods do not
    know its uid: then the object of that name is stopped only if it is the same attempt
    (a requeued trial's new workload reuses the name).
    """
    if workload is None:
        await kube.delete_pod(namespace, name, uid=uid or None)
        return
    api_version, _sep, kind_name = workload.rpartition("/")
    kind = _kind(api_version, kind_name, custom)
    if kind is None:
        return
    if kind.kind == "Job" and not kind.custom:
        await kube.delete_job(namespace, name, uid=uid or None)
        return
    plural = await plural_of(kube, kind)
    if not uid:
        found = await kube.get_object(kind.group, kind.version, plural, namespace, name)
        if found is None:
            return
        meta = found.get("metadata") or {}
        if (meta.get("annotations") or {}).get(ATTEMPT_ANNOTATION) != str(attempt):
            return
        uid = str(meta.get("uid") or "")
    await kube.delete_object(kind.group, kind.version, plural, namespace, name, uid=uid)


async def custom_views(
    kube: KubeClient, namespace: str, sweep: str, kind: WorkloadKind
) -> list[PodView]:
    """The sweep's workloads of a custom kind as trial views (pod_state.job_view). The
    operator watches only the kinds it knows; these it lists on each pass (their pods'
    events and the sweep's metrics interval wake the pass)."""
    plural = await kube.resource_plural(kind.group, kind.version, kind.kind)
    if plural is None:
        return []
    found = await kube.list_objects(
        kind.group, kind.version, plural, namespace, trial_selector(sweep)
    )
    return [seen for obj in found if (seen := job_view(obj, kind)) is not None]


async def delete_custom_workloads(
    kube: KubeClient, namespace: str, sweep: str, spec: Mapping[str, Any]
) -> None:
    """Delete (foreground) the sweep's objects of the custom kind its spec.workload names, if
    it names one kubetune does not know and the cluster serves."""
    workload = spec.get("workload") if isinstance(spec, Mapping) else None
    obj = workload.get("object") if isinstance(workload, Mapping) else None
    if not isinstance(obj, Mapping) or kind_of(obj) is not None:
        return
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    group, _sep, version = api_version.rpartition("/")
    if not group or not kind:
        return
    plural = await kube.resource_plural(group, version, kind)
    if plural is None:
        return
    for found in await kube.list_objects(group, version, plural, namespace, trial_selector(sweep)):
        meta = found.get("metadata") or {}
        name = str(meta.get("name") or "")
        uid = str(meta.get("uid") or "")
        await kube.delete_object(group, version, plural, namespace, name, uid=uid)
