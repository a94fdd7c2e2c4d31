"""A Kueue stand-in: a GPU quota per queue, admitting queued workloads and pods in creation order.

What Kueue does for the kinds of workload kubetune creates with spec.queueName:
- a batch/v1 Job, a JobSet (jobset.x-k8s.io/v1alpha2) or a PyTorchJob (kubeflow.org/v1)
  labelled `kueue.x-k8s.io/queue-name`: held suspended (Kueue's webhook sets `spec.suspend`,
  a PyTorchJob's `spec.runPolicy.suspend`, at creation) and admitted as ONE unit by setting
  it false once the GPUs of all its pods fit the queue's free quota (Kueue makes one Workload
  per object, a PodSet per replicatedJob or replica type: count x the pod template's
  request; a JobSet's child Jobs belong to it and are not queued on their own);
- a Kubeflow TrainJob (trainer.kubeflow.org/v1alpha1) with that label: likewise held by its
  `spec.suspend` and admitted as one unit, its PodSets those of the JobSet its runtime makes
  (numNodes x the trainer's GPUs, resourcesPerNode else the runtime template's; the JobSet
  it owns is not queued on its own);
- a pod with that label: gated at creation (Kueue's pod webhook adds the scheduling gate
  `kueue.x-k8s.io/admission`, so the scheduler leaves it alone), admitted by removing the gate.
Quota is released when the workload finishes (Job Complete/Failed, JobSet Completed/Failed,
PyTorchJob Succeeded/Failed, TrainJob Complete/Failed, pod Succeeded/Failed) or is gone. Off (no queue configured) it does nothing, like a cluster without Kueue: a
suspended Job then stays suspended and no pod is gated.

Eviction (`evict`, a test's call): Kueue evicting an admitted Job, JobSet, PyTorchJob or
TrainJob, as it does when preempting it for a higher-priority workload: it sets the object's
suspend back to true (the JobSet controller then stops its child Jobs and their pods) and
releases its quota; the workload waits in its queue again, in its creation order (Kueue
orders a preempted workload by its creation time; only one evicted for a PodsReady timeout
or an admission check goes by its eviction time), and is admitted again when it fits.

Differences from real Kueue (also in README.md): no Workload, LocalQueue or ClusterQueue
objects (a queue is a name with a GPU quota, set with `configure`); only nvidia.com/gpu is
counted; StrictFIFO only (the oldest workload of a queue blocks the younger ones); no
cohorts, borrowing, priorities or partial admission, and no preemption of its own (a test
evicts with `evict`, and holds the quota meanwhile by lowering it); a workload naming an
unknown queue stays queued (real Kueue also marks it inadmissible).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .api import Api, WriteOptions
from .controller import Controller
from .resources import ResourceType
from .scheduling import gpu_request
from .store import Event
from .trainjob import build_jobset

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
GATE = "kueue.x-k8s.io/admission"


# (group, version, plural) of each suspendable kind Kueue admits, and where its suspend is.
SUSPENDABLE = {
    ("batch", "v1", "jobs"): ("spec", "suspend"),
    ("jobset.x-k8s.io", "v1alpha2", "jobsets"): ("spec", "suspend"),
    ("kubeflow.org", "v1", "pytorchjobs"): ("spec", "runPolicy", "suspend"),
    ("trainer.kubeflow.org", "v1alpha1", "trainjobs"): ("spec", "suspend"),
}
PODS = ("", "v1", "pods")


@dataclass(frozen=True)
class Workload:
    kind: tuple[str, str, str]  # a SUSPENDABLE key, or PODS
    namespace: str
    name: str
    uid: str
    queue: str
    gpus: int


class KueueController(Controller):
    watches = frozenset({(g, p) for g, _v, p in SUSPENDABLE} | {("", "pods")})

    def __init__(self, api: Api) -> None:
        super().__init__(api)
        # Queue name -> GPU quota; empty: Kueue is not installed.
        self.quotas: dict[str, int] = {}
        # Workloads holding quota, by uid; and the order workloads were created in.
        self.admitted: dict[str, Workload] = {}
        self.order: dict[str, int] = {}
        # Most GPUs any queue had admitted at once: what a test checks the quota against.
        self.peak: dict[str, int] = {}
        self._counter = itertools.count()
        api.create_mutators.append(self._gate)

    def configure(self, quotas: Mapping[str, int]) -> None:
        """Queues and their GPU quotas (`{}`: Kueue off). Forgets what was admitted. On the
        cluster's event loop: Cluster.set_kueue_quotas."""
        self.quotas = dict(quotas)
        self.admitted.clear()
        self.peak = dict.fromkeys(self.quotas, 0)
        self._kick()

    def evict(self, plural: str, namespace: str, name: str) -> None:
        """Kueue evicts the running (unsuspended) queued workload of that kind: suspended
        again, its quota released, queued again in its creation order. On the cluster's event
        loop: Cluster.kueue_evict."""
        kind = next(k for k in SUSPENDABLE if k[2] == plural)
        rt = self.api.resource(*kind)
        obj = copy.deepcopy(self.api.get(rt, namespace, name))
        md = obj["metadata"]
        if QUEUE_LABEL not in (md.get("labels") or {}) or _at(obj, SUSPENDABLE[kind]):
            raise ValueError(f"{plural} {namespace}/{name} is not an admitted queued workload")
        holder = obj
        for key in SUSPENDABLE[kind][:-1]:
            holder = holder.setdefault(key, {})
        holder[SUSPENDABLE[kind][-1]] = True
        self.api.update(rt, namespace, name, obj, WriteOptions(manager="kueue-controller"))
        self.admitted.pop(md["uid"], None)
        self._kick()

    # -- the pod webhook ----------------------------------------------------------------------

    def _gate(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Kueue's mutating webhooks: a queued pod is created gated, a queued Job, JobSet or
        PyTorchJob suspended."""
        labels = obj["metadata"].get("labels") or {}
        if not self.quotas or QUEUE_LABEL not in labels:
            return obj
        where = SUSPENDABLE.get((rt.group, rt.version, rt.plural))
        if where is not None:
            holder = obj
            for key in where[:-1]:
                holder = holder.setdefault(key, {})
            holder[where[-1]] = True
            return obj
        if (rt.group, rt.plural) != ("", "pods"):
            return obj
        gates = obj.setdefault("spec", {}).setdefault("schedulingGates", [])
        if not any(g.get("name") == GATE for g in gates):
            gates.append({"name": GATE})
        return obj

    # -- the control loop ---------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if (event.group, event.plural) not in self.watches:
            return
        uid = event.obj["metadata"].get("uid", "")
        if event.type == "ADDED" and uid not in self.order:
            self.order[uid] = next(self._counter)
        self._kick()

    def reconcile(self) -> None:
        if self.quotas:
            self.attempt("kueue", self._release_and_admit)

    def _release_and_admit(self) -> None:
        self._release()
        self._admit()

    def _release(self) -> None:
        for uid, load in list(self.admitted.items()):
            rt = self.api.resource(*load.kind)
            stored = self.api.store.get(self.api.key(rt, load.namespace, load.name))
            if stored is None or stored["metadata"].get("uid") != uid or _finished(stored):
                del self.admitted[uid]

    def _admit(self) -> None:
        used: dict[str, int] = {}
        for load in self.admitted.values():
            used[load.queue] = used.get(load.queue, 0) + load.gpus
        blocked: set[str] = set()
        for load in sorted(self._queued(), key=lambda w: self.order.get(w.uid, -1)):
            quota = self.quotas.get(load.queue)
            if quota is None or load.queue in blocked:
                continue
            if used.get(load.queue, 0) + load.gpus > quota:
                blocked.add(load.queue)  # StrictFIFO: the head waits, and so does the rest
                continue
            self._unsuspend(load)
            self.admitted[load.uid] = load
            used[load.queue] = used.get(load.queue, 0) + load.gpus
            self.peak[load.queue] = max(self.peak.get(load.queue, 0), used[load.queue])

    def _queued(self) -> list[Workload]:
        """Workloads waiting for admission: suspended labelled Jobs, JobSets and PyTorchJobs,
        gated labelled pods."""
        found = []
        for kind, where in SUSPENDABLE.items():
            if self.api.registry.get(*kind) is None:
                continue  # the CRD is not applied
            for obj in self.api.store.items(kind[0], kind[2], None):
                md = obj["metadata"]
                queue = (md.get("labels") or {}).get(QUEUE_LABEL)
                if queue is None or not _at(obj, where) or md.get("deletionTimestamp"):
                    continue
                if md["uid"] in self.admitted or _finished(obj):
                    continue
                gpus = (
                    self._trainjob_gpus(obj)
                    if kind[2] == "trainjobs"
                    else _gpus(kind, obj.get("spec") or {})
                )
                found.append(Workload(kind, md["namespace"], md["name"], md["uid"], queue, gpus))
        for pod in self.api.store.items("", "pods", None):
            md = pod["metadata"]
            queue = (md.get("labels") or {}).get(QUEUE_LABEL)
            gates = (pod.get("spec") or {}).get("schedulingGates") or []
            if queue is None or md.get("deletionTimestamp") or md["uid"] in self.admitted:
                continue
            if not any(g.get("name") == GATE for g in gates):
                continue
            gpus = gpu_request(pod)
            found.append(Workload(PODS, md["namespace"], md["name"], md["uid"], queue, gpus))
        return found

    def _trainjob_gpus(self, obj: dict[str, Any]) -> int:
        """A TrainJob's PodSets, as Kueue's TrainJob integration reads them from the JobSet
        its runtime would make (trainjob.build_jobset): numNodes x the trainer's GPUs, plus
        every other replicated job's; 0 while its runtime is missing."""
        ref = (obj.get("spec") or {}).get("runtimeRef") or {}
        namespaced = ref.get("kind") == "TrainingRuntime"
        plural = "trainingruntimes" if namespaced else "clustertrainingruntimes"
        namespace = obj["metadata"]["namespace"] if namespaced else None
        for runtime in self.api.store.items("trainer.kubeflow.org", plural, namespace):
            if runtime["metadata"]["name"] == ref.get("name"):
                jobset = build_jobset(copy.deepcopy(obj), runtime)
                return _gpus(("jobset.x-k8s.io", "v1alpha2", "jobsets"), jobset["spec"])
        return 0

    def _unsuspend(self, load: Workload) -> None:
        rt = self.api.resource(*load.kind)
        obj = copy.deepcopy(self.api.get(rt, load.namespace, load.name))
        where = SUSPENDABLE.get(load.kind)
        if where is not None:
            holder = obj
            for key in where[:-1]:
                holder = holder[key]
            holder[where[-1]] = False
        else:
            gates = obj["spec"].get("schedulingGates") or []
            obj["spec"]["schedulingGates"] = [g for g in gates if g.get("name") != GATE]
        self.api.update(
            rt, load.namespace, load.name, obj, WriteOptions(manager="kueue-controller")
        )


def _finished(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    # Job Complete, JobSet Completed, PyTorchJob Succeeded; all three Failed.
    return any(
        c.get("type") in ("Complete", "Completed", "Succeeded", "Failed")
        and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _at(obj: dict[str, Any], where: tuple[str, ...]) -> Any:
    value: Any = obj
    for key in where:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _gpus(kind: tuple[str, str, str], spec: dict[str, Any]) -> int:
    """The GPUs of all the object's pods, as Kueue sums its Workload's PodSets: each pod
    template's request x how many pods are made from it."""
    if kind[2] == "jobs":
        return gpu_request(spec.get("template") or {}) * _job_pods(spec)
    if kind[2] == "jobsets":
        total = 0
        for rjob in spec.get("replicatedJobs") or []:
            job = (rjob.get("template") or {}).get("spec") or {}
            pods = int(rjob.get("replicas", 1)) * _job_pods(job)
            total += pods * gpu_request(job.get("template") or {})
        return total
    return sum(
        int(replica.get("replicas", 1)) * gpu_request(replica.get("template") or {})
        for replica in (spec.get("pytorchReplicaSpecs") or {}).values()
    )


def _job_pods(job_spec: dict[str, Any]) -> int:
    """The pods a Job runs at once, as Kueue counts its PodSet: parallelism (default 1), or
    completions where that is fewer."""
    pods = int(job_spec.get("parallelism") or 1)
    completions = job_spec.get("completions")
    return min(pods, int(completions)) if completions is not None else pods
