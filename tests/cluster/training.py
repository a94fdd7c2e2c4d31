"""Stand-ins for the controllers of the distributed workload kinds kubetune runs trials as
(spec.workload), as faithful as kubetune's use needs:

- Kubeflow training operator v1, PyTorchJob (kubeflow.org/v1): one pod per replica of each
  of spec.pytorchReplicaSpecs.{Master,Worker}, named <job>-<type>-<index>, labelled as the
  operator labels them (training.kubeflow.org/job-name, operator-name, replica-type in
  lower case, replica-index, job-role=master on the master) and owned by the PyTorchJob, with
  the rendezvous env it injects (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK). Conditions:
  Created, Running, then Succeeded when the master (else every worker) succeeded, Failed
  when any pod failed (restartPolicy Never, backoffLimit 0: kubetune's settings); suspended
  (runPolicy.suspend) it makes no pods and deletes its active ones.
- JobSet (jobset.x-k8s.io/v1alpha2): one batch/v1 Job per replica of each replicatedJob,
  named <jobset>-<replicatedJob>-<index>, owned by the JobSet, it and its pod template
  labelled jobset.sigs.k8s.io/jobset-name, replicatedjob-name, job-index,
  job-global-index, replicatedjob-replicas (the Job stand-in in jobs.py makes the pods).
  Completed when every Job completed (successPolicy All), Failed when any Job failed
  (failurePolicy.maxRestarts 0: kubetune's setting); suspended it creates no Jobs. Its
  network (spec.network.enableDNSHostnames, on unless false): the pod templates get
  `subdomain` (network.subdomain, default the JobSet's name) and the JobSet a headless
  Service of that name selecting its pods (publishNotReadyAddresses, default true), so an
  Indexed Job's pod is `<jobset>-<replicatedJob>-<job index>-<pod index>.<subdomain>`,
  which the kubelet stand-in resolves.

Not modelled (README.md): PyTorchJob's headless Services for pod DNS, elastic policy,
cleanPodPolicy, TTL, restarts (maxRestarts > 0, backoffLimit > 0), successPolicy other than
the defaults, JobSet startupPolicy, coordinator and networking, exclusive placement.
"""

from __future__ import annotations

import copy
from typing import Any

from .api import WriteOptions
from .controller import Controller
from .errors import ApiError
from .jobs import TERMINAL, _condition
from .meta import controller_ref

PYTORCH = ("kubeflow.org", "v1", "pytorchjobs")
JOBSET = ("jobset.x-k8s.io", "v1alpha2", "jobsets")
JOBS = ("batch", "v1", "jobs")
PODS = ("", "v1", "pods")
SERVICES = ("", "v1", "services")
MASTER_PORT = 23456
JS = "jobset.sigs.k8s.io"
TK = "training.kubeflow.org"


class TrainingControllers(Controller):
    watches = frozenset(
        {(PYTORCH[0], PYTORCH[2]), (JOBSET[0], JOBSET[2]), ("batch", "jobs"), ("", "pods")}
    )

    def reconcile(self) -> None:
        self.each(
            PYTORCH[2], self.api.store.items(PYTORCH[0], PYTORCH[2], None), self._sync_pytorchjob
        )
        self.each(JOBSET[2], self.api.store.items(JOBSET[0], JOBSET[2], None), self._sync_jobset)

    def _owned(self, obj: dict[str, Any], group: str, plural: str) -> list[dict[str, Any]]:
        uid = obj["metadata"]["uid"]
        return [
            item
            for item in self.api.store.items(group, plural, obj["metadata"]["namespace"])
            if any(
                ref.get("uid") == uid and ref.get("controller")
                for ref in item["metadata"].get("ownerReferences") or []
            )
        ]

    def _write_status(self, resource: tuple[str, str, str], obj: dict[str, Any], new: Any) -> None:
        if new == obj.get("status"):
            return
        obj["status"] = new
        md = obj["metadata"]
        self.api.update(
            self.api.resource(*resource),
            md["namespace"],
            md["name"],
            obj,
            WriteOptions(field_validation="Strict", manager="training-controller"),
            subresource="status",
        )

    # -- PyTorchJob ----------------------------------------------------------------------------

    def _sync_pytorchjob(self, job: dict[str, Any]) -> None:
        md, spec = job["metadata"], job["spec"]
        status: dict[str, Any] = copy.deepcopy(job.get("status") or {})
        if md.get("deletionTimestamp") or _finished_as(status, ("Succeeded", "Failed")):
            return
        replicas: dict[str, Any] = spec.get("pytorchReplicaSpecs") or {}
        pods = {p["metadata"]["name"]: p for p in self._owned(job, "", "pods")}
        conditions = [c for c in status.get("conditions") or [] if c["type"] != "Suspended"]
        if not any(c["type"] == "Created" for c in conditions):
            conditions.append(_condition("Created", "PyTorchJobCreated", "created"))
        if (spec.get("runPolicy") or {}).get("suspend"):
            for pod in pods.values():
                self.remove(PODS, pod)
            conditions.append(_condition("Suspended", "PyTorchJobSuspended", "suspended"))
            self._write_status(PYTORCH, job, {**status, "conditions": conditions})
            return
        world = sum(int(r.get("replicas", 1)) for r in replicas.values())
        wanted = [
            (rtype, index)
            for rtype in sorted(replicas, key=lambda t: t != "Master")
            for index in range(int(replicas[rtype].get("replicas", 1)))
        ]
        for rank, (rtype, index) in enumerate(wanted):
            name = f"{md['name']}-{rtype.lower()}-{index}"
            if name not in pods:
                pods[name] = self._create_replica_pod(job, rtype, index, rank, world)
        phases = {name: (pod.get("status") or {}).get("phase") for name, pod in pods.items()}
        failed = [name for name, phase in phases.items() if phase == "Failed"]
        primary = (
            [f"{md['name']}-master-0"]
            if "Master" in replicas
            else [
                f"{md['name']}-worker-{i}"
                for i in range(int(replicas["Worker"].get("replicas", 1)))
            ]
        )
        states: dict[str, dict[str, int]] = {}
        for name, pod in pods.items():
            rtype = pod["metadata"]["labels"].get(f"{TK}/replica-type", "").capitalize()
            phase = phases[name]
            key = {"Succeeded": "succeeded", "Failed": "failed"}.get(str(phase), "active")
            states.setdefault(rtype, {})[key] = states.get(rtype, {}).get(key, 0) + 1
        if failed:
            conditions.append(
                _condition(
                    "Failed",
                    "PyTorchJobFailed",
                    f"PyTorchJob {md['name']} is failed because pod {failed[0]} failed.",
                )
            )
            for name, pod in pods.items():  # cleanPodPolicy Running: stop the others
                if phases[name] not in TERMINAL:
                    self.remove(PODS, pod)
        elif all(phases.get(name) == "Succeeded" for name in primary):
            conditions.append(
                _condition(
                    "Succeeded", "PyTorchJobSucceeded", f"PyTorchJob {md['name']} succeeded."
                )
            )
        elif any(phase == "Running" for phase in phases.values()) and not any(
            c["type"] == "Running" for c in conditions
        ):
            conditions.append(_condition("Running", "PyTorchJobRunning", "running"))
        self._write_status(
            PYTORCH, job, {**status, "conditions": conditions, "replicaStatuses": states}
        )

    def _create_replica_pod(
        self, job: dict[str, Any], rtype: str, index: int, rank: int, world: int
    ) -> dict[str, Any]:
        md = job["metadata"]
        template = copy.deepcopy(job["spec"]["pytorchReplicaSpecs"][rtype]["template"])
        pod_md = dict(template.get("metadata") or {})
        labels = dict(pod_md.get("labels") or {})
        labels.update(
            {
                f"{TK}/job-name": md["name"],
                f"{TK}/operator-name": "pytorchjob-controller",
                f"{TK}/replica-type": rtype.lower(),
                f"{TK}/replica-index": str(index),
            }
        )
        if rtype == "Master":
            labels[f"{TK}/job-role"] = "master"
        name = f"{md['name']}-{rtype.lower()}-{index}"
        pod_md.update({"name": name, "labels": labels, "ownerReferences": [controller_ref(job)]})
        spec = template["spec"]
        master = (
            f"{md['name']}-master-0" if "Master" in job["spec"]["pytorchReplicaSpecs"] else name
        )
        rendezvous = [
            {"name": "MASTER_ADDR", "value": master},
            {"name": "MASTER_PORT", "value": str(MASTER_PORT)},
            {"name": "WORLD_SIZE", "value": str(world)},
            {"name": "RANK", "value": str(rank)},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
        ]
        for container in spec.get("containers") or []:
            container["env"] = list(container.get("env") or []) + rendezvous
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": spec}
        return self.api.create(
            self.api.resource(*PODS), md["namespace"], body, WriteOptions(manager="pytorchjob")
        )

    # -- JobSet --------------------------------------------------------------------------------

    def _sync_jobset(self, jobset: dict[str, Any]) -> None:
        md, spec = jobset["metadata"], jobset["spec"]
        status: dict[str, Any] = copy.deepcopy(jobset.get("status") or {})
        if md.get("deletionTimestamp") or _finished_as(status, ("Completed", "Failed")):
            return
        jobs = {j["metadata"]["name"]: j for j in self._owned(jobset, "batch", "jobs")}
        conditions = [c for c in status.get("conditions") or [] if c["type"] != "Suspended"]
        if spec.get("suspend"):
            for job in jobs.values():
                self.remove(JOBS, job)
            conditions.append(_condition("Suspended", "SuspendedJobs", "jobset is suspended"))
            self._write_status(JOBSET, jobset, {**status, "conditions": conditions})
            return
        subdomain = _subdomain(jobset)
        if subdomain is not None:
            self._ensure_service(jobset, subdomain)
        global_index = 0
        for rjob in spec.get("replicatedJobs") or []:
            count = int(rjob.get("replicas", 1))
            for index in range(count):
                name = f"{md['name']}-{rjob['name']}-{index}"
                if name not in jobs:
                    jobs[name] = self._create_child_job(jobset, rjob, index, global_index)
                global_index += 1
        states = [_job_state(job) for job in jobs.values()]
        if "Failed" in states:
            failed = next(n for n, j in jobs.items() if _job_state(j) == "Failed")
            conditions.append(
                _condition(
                    "Failed",
                    "FailedJobs",
                    f"jobset failed due to reaching max number of restarts (job {failed})",
                )
            )
            for job in jobs.values():
                if _job_state(job) is None:
                    self.remove(JOBS, job)
        elif states and all(state == "Complete" for state in states):
            conditions.append(_condition("Completed", "AllJobsCompleted", "jobset completed"))
        self._write_status(JOBSET, jobset, {**status, "conditions": conditions})

    def _ensure_service(self, jobset: dict[str, Any], name: str) -> None:
        md = jobset["metadata"]
        if self.api.store.get(("", "services", md["namespace"], name)) is not None:
            return
        network = jobset["spec"].get("network") or {}
        body = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": md["namespace"],
                "ownerReferences": [controller_ref(jobset)],
            },
            "spec": {
                "clusterIP": "None",
                "selector": {f"{JS}/jobset-name": md["name"]},
                "publishNotReadyAddresses": network.get("publishNotReadyAddresses", True),
            },
        }
        try:
            self.api.create(
                self.api.resource(*SERVICES), md["namespace"], body, WriteOptions(manager="jobset")
            )
        except ApiError as error:
            if error.code != 409:
                raise

    def _create_child_job(
        self, jobset: dict[str, Any], rjob: dict[str, Any], index: int, global_index: int
    ) -> dict[str, Any]:
        md = jobset["metadata"]
        template = copy.deepcopy(rjob["template"])
        labels = {
            f"{JS}/jobset-name": md["name"],
            f"{JS}/replicatedjob-name": rjob["name"],
            f"{JS}/replicatedjob-replicas": str(rjob.get("replicas", 1)),
            f"{JS}/job-index": str(index),
            f"{JS}/job-global-index": str(global_index),
        }
        job_md = dict(template.get("metadata") or {})
        job_md.update(
            {
                "name": f"{md['name']}-{rjob['name']}-{index}",
                "labels": {**(job_md.get("labels") or {}), **labels},
                "ownerReferences": [controller_ref(jobset)],
            }
        )
        pod_template = template["spec"]["template"]
        pod_md = dict(pod_template.get("metadata") or {})
        pod_md["labels"] = {**(pod_md.get("labels") or {}), **labels}
        pod_template["metadata"] = pod_md
        subdomain = _subdomain(jobset)
        if subdomain is not None:
            pod_template["spec"]["subdomain"] = subdomain
        body = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": job_md,
            "spec": template["spec"],
        }
        return self.api.create(
            self.api.resource(*JOBS), md["namespace"], body, WriteOptions(manager="jobset")
        )


def _subdomain(jobset: dict[str, Any]) -> str | None:
    """The pods' DNS subdomain (and headless Service name), None with DNS hostnames off."""
    network = jobset["spec"].get("network") or {}
    if network.get("enableDNSHostnames") is False:
        return None
    return str(network.get("subdomain") or jobset["metadata"]["name"])


def _finished_as(status: dict[str, Any], kinds: tuple[str, str]) -> bool:
    return any(
        c.get("type") in kinds and c.get("status") == "True" for c in status.get("conditions") or []
    )


def _job_state(job: dict[str, Any]) -> str | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"])
    return None
