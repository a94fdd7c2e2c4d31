"""Creating and deleting what a trial runs as: a Pod, or its workload object (spec.workload:
a batch/v1 Job, a JobSet or a PyTorchJob; trainer.nodes: an Indexed Job)."""

import copy
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import ATTEMPT_ANNOTATION
from kubetune.builders.nodes import RENDEZVOUS_ANNOTATION, rendezvous_service
from kubetune.operator.kube import KubeClient
from kubetune.spec.workload_kinds import KINDS, WorkloadKind, kind_of


def is_job(manifest: dict[str, Any]) -> bool:
    return kind_of(manifest) is not None


async def create_trial(kube: KubeClient, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The created object, or None when one of that name already exists."""
    kind = kind_of(manifest)
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
    if kind.kind == "Job":
        return await kube.create_job(manifest)
    return await kube.create_object(kind.group, kind.version, kind.plural, manifest)


async def delete_trial(
    kube: KubeClient,
    namespace: str,
    name: str,
    uid: str,
    workload: str | None = None,
    attempt: int = 0,
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
    kind: WorkloadKind | None = KINDS.get((api_version, kind_name))
    if kind is None:
        return
    if kind.kind == "Job":
        await kube.delete_job(namespace, name, uid=uid or None)
        return
    if not uid:
        found = await kube.get_object(kind.group, kind.version, kind.plural, namespace, name)
        if found is None:
            return
        meta = found.get("metadata") or {}
        if (meta.get("annotations") or {}).get(ATTEMPT_ANNOTATION) != str(attempt):
            return
        uid = str(meta.get("uid") or "")
    await kube.delete_object(kind.group, kind.version, kind.plural, namespace, name, uid=uid)
