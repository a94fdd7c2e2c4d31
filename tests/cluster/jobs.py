"""A batch/v1 Job controller stand-in: what kube-controller-manager's job controller does,
for the Jobs kubetune runs trials as (spec.workload).

Creates the pods of a Job from its template (the Job's selector labels, an ownerReference
to the Job), up to parallelism and completions; counts succeeded and failed pods; sets the
Complete or Failed (BackoffLimitExceeded) condition; creates no pods while `suspend` is
true and deletes the active ones when a Job is suspended. Deleting a Job is the garbage
collector's business (lifecycle.py; batch/v1 Jobs orphan their pods unless told otherwise).
Indexed completion (completionMode: Indexed): one pod per index up to parallelism, each
labelled and annotated batch.kubernetes.io/job-completion-index, with JOB_COMPLETION_INDEX
in every container's env and hostname `<job>-<index>`; the Job completes when every index
succeeded. Not modelled: podFailurePolicy, backoffLimitPerIndex, pod replacement policy,
Job-level activeDeadlineSeconds, backoff delays between retries.
"""

from __future__ import annotations

import copy
import random
import string
from typing import Any

from .api import Api, WriteOptions
from .controller import Controller
from .errors import ApiError
from .kinds import DEFAULT_BACKOFF_LIMIT
from .lifecycle import DeleteOptions
from .meta import controller_ref, now

TERMINAL = ("Succeeded", "Failed")
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"


class JobController(Controller):
    watches = frozenset({("batch", "jobs"), ("", "pods")})

    def __init__(self, api: Api) -> None:
        super().__init__(api)
        self.jobs = api.resource("batch", "v1", "jobs")
        self.pods = api.resource("", "v1", "pods")

    def reconcile(self) -> None:
        self.each("job", self.api.store.items("batch", "jobs", None), self._sync)

    def _owned_pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [
            pod
            for pod in self.api.store.items("", "pods", job["metadata"]["namespace"])
            if any(
                ref.get("uid") == uid and ref.get("controller")
                for ref in pod["metadata"].get("ownerReferences") or []
            )
        ]

    def _sync(self, job: dict[str, Any]) -> None:
        md, spec = job["metadata"], job["spec"]
        status: dict[str, Any] = job.get("status") or {}
        if md.get("deletionTimestamp") or _finished(status):
            return
        pods = self._owned_pods(job)
        phases = [(pod.get("status") or {}).get("phase") for pod in pods]
        succeeded = phases.count("Succeeded")
        failed = phases.count("Failed")
        active = [
            pod
            for pod, phase in zip(pods, phases, strict=True)
            if phase not in TERMINAL and not pod["metadata"].get("deletionTimestamp")
        ]
        new: dict[str, Any] = {
            key: value for key, value in status.items() if key in ("startTime", "conditions")
        }
        conditions = [c for c in new.get("conditions") or [] if c["type"] != "Suspended"]
        if spec.get("suspend"):
            for pod in active:
                self._delete_pod(pod)
            active = []
            conditions.append(_condition("Suspended", "JobSuspended", "Job suspended"))
            # Resuming restarts the clock (activeDeadlineSeconds counts from startTime).
            new.pop("startTime", None)
        else:
            new.setdefault("startTime", now())
            completions = int(spec.get("completions") or 1)
            indexed = spec.get("completionMode") == "Indexed"
            done = {_index(p) for p, ph in zip(pods, phases, strict=True) if ph == "Succeeded"}
            if indexed:
                succeeded = len(done & set(range(completions)))
            if succeeded >= completions:
                conditions.append(_condition("Complete", "", ""))
                new["completionTime"] = now()
            elif failed > int(spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT)):
                for pod in active:
                    self._delete_pod(pod)
                active = []
                conditions.append(
                    _condition(
                        "Failed",
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                    )
                )
            elif indexed:
                busy = done | {_index(pod) for pod in active}
                free = [i for i in range(completions) if i not in busy]
                room = int(spec.get("parallelism") or 1) - len(active)
                for index in free[: max(0, room)]:
                    active.append(self._create_pod(job, index))
            else:
                wanted = min(int(spec.get("parallelism") or 1), completions - succeeded)
                for _ in range(wanted - len(active)):
                    active.append(self._create_pod(job))
        if conditions:
            new["conditions"] = conditions
        for key, count in (("active", len(active)), ("succeeded", succeeded), ("failed", failed)):
            if count:
                new[key] = count
        if new != status:
            job["status"] = new
            self.api.update(
                self.jobs,
                md["namespace"],
                md["name"],
                job,
                WriteOptions(field_validation="Strict", manager="job-controller"),
                subresource="status",
            )

    def _create_pod(self, job: dict[str, Any], index: int | None = None) -> dict[str, Any]:
        md = job["metadata"]
        template = copy.deepcopy(job["spec"]["template"])
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        pod_md = dict(template.get("metadata") or {})
        prefix = md["name"] if index is None else f"{md['name']}-{index}"
        if index is not None:
            _set_index(pod_md, template["spec"], md["name"], index)
        pod_md.update(
            {
                "name": f"{prefix}-{suffix}",
                "ownerReferences": [controller_ref(job)],
            }
        )
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": template["spec"]}
        return self.api.create(
            self.pods, md["namespace"], body, WriteOptions(manager="job-controller")
        )

    def _delete_pod(self, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        try:
            self.api.delete(self.pods, md["namespace"], md["name"], DeleteOptions())
        except ApiError as error:
            if error.code != 404:
                raise


def _index(pod: dict[str, Any]) -> int:
    raw = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX, "-1")
    return int(raw) if str(raw).lstrip("-").isdigit() else -1


def _set_index(meta: dict[str, Any], spec: dict[str, Any], job: str, index: int) -> None:
    """What the job controller puts on an Indexed Job's pod of `index`."""
    meta["labels"] = {**(meta.get("labels") or {}), COMPLETION_INDEX: str(index)}
    meta["annotations"] = {**(meta.get("annotations") or {}), COMPLETION_INDEX: str(index)}
    spec.setdefault("hostname", f"{job}-{index}")
    source = {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}
    for container in [*(spec.get("initContainers") or []), *spec["containers"]]:
        container["env"] = [
            *(container.get("env") or []),
            {"name": "JOB_COMPLETION_INDEX", "valueFrom": source},
        ]


def _finished(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _condition(kind: str, reason: str, message: str) -> dict[str, Any]:
    condition = {
        "type": kind,
        "status": "True",
        "lastProbeTime": now(),
        "lastTransitionTime": now(),
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition
