"""What the API server does to built-in kinds on write: defaults, initial status, checks."""

from __future__ import annotations

import base64
from typing import Any

from .resources import ResourceType


def initial_status(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    if rt.group != "":
        return obj
    if rt.plural == "pods":
        obj["status"] = {"phase": "Pending", "qosClass": _qos(obj)}
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        for c in spec.get("containers") or []:
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("imagePullPolicy", "IfNotPresent")
    elif rt.plural == "namespaces":
        obj["status"] = {"phase": "Active"}
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"][
            "name"
        ]
    return obj


def _qos(pod: dict[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("limits") or r.get("requests") for r in resources):
        return "BestEffort"
    if all(r.get("limits") and (r.get("requests") in (None, r.get("limits"))) for r in resources):
        return "Guaranteed"
    return "Burstable"


def secret_defaults(secret: dict[str, Any]) -> dict[str, Any]:
    """`type` defaults to Opaque; write-only `stringData` is merged into `data` (base64)."""
    secret.setdefault("type", "Opaque")
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = dict(secret.get("data") or {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        secret["data"] = data
    return secret


def pod_causes(pod: dict[str, Any]) -> list[dict[str, str]]:
    containers = (pod.get("spec") or {}).get("containers")
    if not containers:
        return [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.containers",
            }
        ]
    causes = []
    for i, c in enumerate(containers):
        for required in ("name", "image"):
            if not c.get(required):
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": f"spec.containers[{i}].{required}",
                    }
                )
    return causes


# batch/v1 Job defaults, as the API server sets them on create.
DEFAULT_BACKOFF_LIMIT = 6
UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


def job_defaults(job: dict[str, Any]) -> dict[str, Any]:
    """What the API server fills in on create: counts, selector and the pods' job labels."""
    spec = job.setdefault("spec", {})
    spec.setdefault("backoffLimit", DEFAULT_BACKOFF_LIMIT)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("suspend", False)
    spec.setdefault("completionMode", "NonIndexed")
    md = job["metadata"]
    labels = spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {})
    for key in UID_LABELS:
        labels[key] = md["uid"]
    for key in NAME_LABELS:
        labels[key] = md["name"]
    spec.setdefault("selector", {"matchLabels": {UID_LABELS[0]: md["uid"]}})
    spec["template"].setdefault("spec", {}).setdefault("restartPolicy", "Never")
    job["status"] = {}
    return job


def job_causes(job: dict[str, Any]) -> list[dict[str, str]]:
    """What the API server refuses in a Job: a template restartPolicy other than Never/OnFailure."""
    policy = ((job.get("spec") or {}).get("template") or {}).get("spec", {}).get("restartPolicy")
    if policy not in (None, "Never", "OnFailure"):
        return [
            {
                "reason": "FieldValueNotSupported",
                "message": f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
                "field": "spec.template.spec.restartPolicy",
            }
        ]
    return []
