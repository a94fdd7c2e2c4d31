"""A stand-in for Kubeflow Trainer v2's TrainJob controller (trainer.kubeflow.org/v1alpha1,
as released in v2.0/v2.1; testdata/trainjobs-crd.yaml), as faithful as kubetune's use needs.

A TrainJob references a TrainingRuntime (its namespace) or ClusterTrainingRuntime
(spec.runtimeRef, kind defaulting to ClusterTrainingRuntime). The controller makes ONE
JobSet of the TrainJob's name, owned by it, from the runtime's spec.template (its metadata
labels and annotations, then the TrainJob's spec.labels/annotations, on the JobSet):

- the trainer job (label trainer.kubeflow.org/trainjob-ancestor-step: trainer) gets
  replicas 1 and parallelism = completions = spec.trainer.numNodes (else the runtime's
  mlPolicy.numNodes, else 1), as upstream's jobset Builder.Trainer;
- every container named `node` gets spec.trainer's image, command, args, resourcesPerNode
  and env (upserted by name over the runtime's);
- spec.podTemplateOverrides are merged in order onto the pod templates of the replicated
  jobs each targets (labels and annotations merged; nodeSelector merged; tolerations and
  affinity and serviceAccountName replaced; volumes, schedulingGates, imagePullSecrets and
  containers' env and volumeMounts merged by name), as upstream's strategic merge patch;
- spec.suspend is the JobSet's spec.suspend (kept in step: Kueue unsuspends the TrainJob).

The JobSet stand-in (training.py) then makes the Jobs, the Job stand-in (jobs.py) the pods.
Status: condition Suspended (True, reason Suspended, while suspended; False, reason Resumed,
after), then Complete (reason JobSetCompleted) or Failed (the JobSet's reason and message)
as the JobSet ends. Without its runtime the TrainJob waits (no JobSet, no condition).

Not modelled (README.md): the admission webhook (runtime existence, override target names),
initializers' storageUri/env, MLPolicy plugins (torch's PET_* env, MPI's hostfile and SSH
keys), podGroupPolicy, jobsStatus, runtimePatches (the API after v2.1), managedBy.
"""

from __future__ import annotations

import copy
from typing import Any

from .api import WriteOptions
from .controller import Controller
from .meta import controller_ref, now

GROUP = "trainer.kubeflow.org"
TRAINJOBS = (GROUP, "v1alpha1", "trainjobs")
RUNTIMES = (GROUP, "v1alpha1", "trainingruntimes")
CLUSTER_RUNTIMES = (GROUP, "v1alpha1", "clustertrainingruntimes")
JOBSET = ("jobset.x-k8s.io", "v1alpha2", "jobsets")
ANCESTOR = f"{GROUP}/trainjob-ancestor-step"
NODE = "node"


class TrainJobController(Controller):
    watches = frozenset(
        {(GROUP, TRAINJOBS[2]), (GROUP, RUNTIMES[2]), (GROUP, CLUSTER_RUNTIMES[2])}
        | {(JOBSET[0], JOBSET[2])}
    )

    def reconcile(self) -> None:
        if self.api.registry.get(*TRAINJOBS) is None:
            return  # the CRDs are not applied: the kind is not served
        self.each(TRAINJOBS[2], self.api.store.items(GROUP, TRAINJOBS[2], None), self._sync)

    def _sync(self, job: dict[str, Any]) -> None:
        md, spec = job["metadata"], job["spec"]
        status: dict[str, Any] = copy.deepcopy(job.get("status") or {})
        if md.get("deletionTimestamp") or _ended(status):
            return
        jobset = self._jobset(job)
        if jobset is None:
            runtime = self._runtime(job)
            if runtime is None:
                return  # its runtime is not there yet
            body = build_jobset(job, runtime)
            jobset = self.api.create(
                self.api.resource(*JOBSET), md["namespace"], body, WriteOptions(manager="trainer")
            )
        suspend = bool(spec.get("suspend"))
        if bool(jobset["spec"].get("suspend")) != suspend:
            jobset = copy.deepcopy(jobset)
            jobset["spec"]["suspend"] = suspend
            jobset = self.api.update(
                self.api.resource(*JOBSET),
                md["namespace"],
                md["name"],
                jobset,
                WriteOptions(manager="trainer"),
            )
        self._write_status(job, status, jobset, suspend)

    def _jobset(self, job: dict[str, Any]) -> dict[str, Any] | None:
        md = job["metadata"]
        for item in self.api.store.items(JOBSET[0], JOBSET[2], md["namespace"]):
            refs = item["metadata"].get("ownerReferences") or []
            if item["metadata"]["name"] == md["name"] and any(
                r.get("uid") == md["uid"] and r.get("controller") for r in refs
            ):
                return item
        return None

    def _runtime(self, job: dict[str, Any]) -> dict[str, Any] | None:
        ref = job["spec"].get("runtimeRef") or {}
        namespaced = ref.get("kind") == "TrainingRuntime"
        kind = RUNTIMES if namespaced else CLUSTER_RUNTIMES
        if self.api.registry.get(*kind) is None:
            return None
        namespace = job["metadata"]["namespace"] if namespaced else None
        for item in self.api.store.items(GROUP, kind[2], namespace):
            if item["metadata"]["name"] == ref.get("name"):
                return item
        return None

    def _write_status(
        self, job: dict[str, Any], status: dict[str, Any], jobset: dict[str, Any], suspend: bool
    ) -> None:
        conditions = [c for c in status.get("conditions") or [] if c["type"] != "Suspended"]
        was_suspended = any(
            c["type"] == "Suspended" and c["status"] == "True"
            for c in status.get("conditions") or []
        )
        if suspend:
            conditions.append(_condition("Suspended", "Suspended", "TrainJob is suspended"))
        elif was_suspended:
            resumed = _condition("Suspended", "Resumed", "TrainJob is resumed")
            resumed["status"] = "False"
            conditions.append(resumed)
        for seen in (jobset.get("status") or {}).get("conditions") or []:
            if seen.get("status") != "True":
                continue
            if seen.get("type") == "Completed":
                conditions.append(_condition("Complete", "JobSetCompleted", "TrainJob completed"))
            elif seen.get("type") == "Failed":
                conditions.append(
                    _condition(
                        "Failed", str(seen.get("reason") or ""), str(seen.get("message") or "")
                    )
                )
        new = {**status, "conditions": conditions} if conditions else status
        if new == (job.get("status") or {}):
            return
        job["status"] = new
        md = job["metadata"]
        self.api.update(
            self.api.resource(*TRAINJOBS),
            md["namespace"],
            md["name"],
            job,
            WriteOptions(field_validation="Strict", manager="trainer"),
            subresource="status",
        )


def build_jobset(job: dict[str, Any], runtime: dict[str, Any]) -> dict[str, Any]:
    """The JobSet the Trainer makes of `job` with `runtime`'s template."""
    md, spec = job["metadata"], job["spec"]
    template = copy.deepcopy((runtime.get("spec") or {}).get("template") or {})
    meta = template.get("metadata") or {}
    js_spec: dict[str, Any] = template.get("spec") or {}
    trainer = spec.get("trainer") or {}
    nodes = trainer.get("numNodes") or ((runtime["spec"].get("mlPolicy") or {}).get("numNodes"))
    for rjob in js_spec.get("replicatedJobs") or []:
        job_template = rjob.setdefault("template", {})
        labels = (job_template.get("metadata") or {}).get("labels") or {}
        job_spec = job_template.setdefault("spec", {})
        if labels.get(ANCESTOR) == "trainer":
            rjob["replicas"] = 1
            job_spec["parallelism"] = job_spec["completions"] = int(nodes or 1)
        pod_spec = job_spec.setdefault("template", {}).setdefault("spec", {})
        for container in pod_spec.get("containers") or []:
            if container.get("name") == NODE:
                _apply_trainer(container, trainer)
    for override in spec.get("podTemplateOverrides") or []:
        targets = {t.get("name") for t in override.get("targetJobs") or []}
        for rjob in js_spec.get("replicatedJobs") or []:
            if rjob.get("name") in targets:
                _apply_override(rjob["template"]["spec"]["template"], override)
    js_spec["suspend"] = bool(spec.get("suspend"))
    return {
        "apiVersion": "/".join(JOBSET[:2]),
        "kind": "JobSet",
        "metadata": {
            "name": md["name"],
            "labels": {**(meta.get("labels") or {}), **(spec.get("labels") or {})},
            "annotations": {**(meta.get("annotations") or {}), **(spec.get("annotations") or {})},
            "ownerReferences": [controller_ref(job)],
        },
        "spec": js_spec,
    }


def _apply_trainer(container: dict[str, Any], trainer: dict[str, Any]) -> None:
    for key in ("image", "command", "args"):
        if trainer.get(key) is not None:
            container[key] = copy.deepcopy(trainer[key])
    resources = trainer.get("resourcesPerNode") or {}
    if resources.get("limits") or resources.get("requests"):
        container["resources"] = copy.deepcopy(resources)
    container["env"] = _merged(container.get("env"), trainer.get("env"))


def _apply_override(template: dict[str, Any], override: dict[str, Any]) -> None:
    meta = template.setdefault("metadata", {})
    for key in ("labels", "annotations"):
        given = (override.get("metadata") or {}).get(key)
        if given:
            meta[key] = {**(meta.get(key) or {}), **given}
    given_spec = override.get("spec") or {}
    pod_spec = template.setdefault("spec", {})
    for key in ("serviceAccountName", "affinity", "tolerations"):
        if key in given_spec:
            pod_spec[key] = copy.deepcopy(given_spec[key])
    if given_spec.get("nodeSelector"):
        pod_spec["nodeSelector"] = {
            **(pod_spec.get("nodeSelector") or {}),
            **given_spec["nodeSelector"],
        }
    for key in ("volumes", "schedulingGates", "imagePullSecrets"):
        if given_spec.get(key):
            pod_spec[key] = _merged(pod_spec.get(key), given_spec[key])
    for kind in ("initContainers", "containers"):
        for given in given_spec.get(kind) or []:
            for container in pod_spec.get(kind) or []:
                if container.get("name") == given.get("name"):
                    for key in ("env", "volumeMounts"):
                        if given.get(key):
                            container[key] = _merged(container.get(key), given[key])


def _merged(base: Any, given: Any) -> list[dict[str, Any]]:
    """A list of named items with `given` upserted by name (a strategic merge by `name`)."""
    out = [copy.deepcopy(item) for item in base or []]
    for item in given or []:
        names = [o.get("name") for o in out]
        if item.get("name") in names:
            out[names.index(item.get("name"))] = copy.deepcopy(item)
        else:
            out.append(copy.deepcopy(item))
    return out


def _condition(kind: str, reason: str, message: str) -> dict[str, Any]:
    """A metav1.Condition (TrainJob's conditions are; no lastProbeTime, reason required)."""
    return {
        "type": kind,
        "status": "True",
        "reason": reason or kind,
        "message": message,
        "lastTransitionTime": now(),
    }


def _ended(status: dict[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
