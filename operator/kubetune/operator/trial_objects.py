"""Creating and deleting what a trial runs as: a Pod, or a batch/v1 Job (spec.workload)."""

from typing import Any

from kubetune.operator.kube import KubeClient


def is_job(manifest: dict[str, Any]) -> bool:
    return manifest.get("kind") == "Job" and manifest.get("apiVersion") == "batch/v1"


async def create_trial(kube: KubeClient, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The created object, or None when one of that name already exists."""
    if is_job(manifest):
        return await kube.create_job(manifest)
    return await kube.create_pod(manifest)


async def delete_trial(kube: KubeClient, namespace: str, name: str, uid: str, job: bool) -> None:
    """Stop a trial: its Job with its pods (foreground), or its pod."""
    if job:
        await kube.delete_job(namespace, name, uid=uid or None)
    else:
        await kube.delete_pod(namespace, name, uid=uid or None)
