"""A stand-in controller for a workload kind kubetune does not know: example.dev/v1
TrainingRun (testdata/trainingruns-crd.yaml), made up for the tests of spec.workload with
user-given pod template paths and success and failure conditions.

A TrainingRun makes one pod from spec.leader.template (<run>-leader-0, labelled
example.dev/role=leader) and spec.workers.replicas pods from spec.workers.template
(<run>-worker-<i>, role=worker), each owned by the run. Its status: phase Running once any
pod runs; when the leader succeeded, phase Succeeded and condition Done=True (reason
LeaderSucceeded); when any pod failed, phase Failed and condition Done=False (reason
PodFailed, naming the pod), and its other pods are deleted. It never restarts a pod.

The point is that these names are not any known kind's: kubetune can only find the pod
templates, the primary pod and the ending through what the sweep says.
"""

from __future__ import annotations

import copy
from typing import Any

from .api import WriteOptions
from .controller import Controller
from .jobs import TERMINAL
from .meta import controller_ref, now

RUNS = ("example.dev", "v1", "trainingruns")
PODS = ("", "v1", "pods")
ROLE = "example.dev/role"


class TrainingRunController(Controller):
    watches = frozenset({(RUNS[0], RUNS[2]), ("", "pods")})

    def reconcile(self) -> None:
        if self.api.registry.get(*RUNS) is None:
            return  # the CRD is not applied: the kind is not served
        self.each(RUNS[2], self.api.store.items(RUNS[0], RUNS[2], None), self._sync)

    def _sync(self, run: dict[str, Any]) -> None:
        md, spec = run["metadata"], run["spec"]
        status: dict[str, Any] = copy.deepcopy(run.get("status") or {})
        if md.get("deletionTimestamp") or status.get("phase") in TERMINAL:
            return
        uid = md["uid"]
        pods = {
            p["metadata"]["name"]: p
            for p in self.api.store.items("", "pods", md["namespace"])
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        }
        wanted = [("leader", 0, spec["leader"]["template"])]
        workers = spec.get("workers") or {}
        wanted += [
            ("worker", i, workers["template"]) for i in range(int(workers.get("replicas", 0)))
        ]
        for role, index, template in wanted:
            name = f"{md['name']}-{role}-{index}"
            if name not in pods:
                pods[name] = self._create_pod(run, role, index, template)
        phases = {name: (p.get("status") or {}).get("phase") for name, p in pods.items()}
        failed = sorted(name for name, phase in phases.items() if phase == "Failed")
        if failed:
            status["phase"] = "Failed"
            status["conditions"] = [_done("False", "PodFailed", f"pod {failed[0]} failed")]
            for name, pod in pods.items():
                if phases[name] not in TERMINAL:
                    self.remove(PODS, pod)
        elif phases.get(f"{md['name']}-leader-0") == "Succeeded":
            status["phase"] = "Succeeded"
            status["conditions"] = [_done("True", "LeaderSucceeded", "the leader succeeded")]
        elif "Running" in phases.values():
            status["phase"] = "Running"
        else:
            status.setdefault("phase", "Pending")
        if status != run.get("status"):
            run["status"] = status
            self.api.update(
                self.api.resource(*RUNS),
                md["namespace"],
                md["name"],
                run,
                WriteOptions(field_validation="Strict", manager="trainingrun-controller"),
                subresource="status",
            )

    def _create_pod(
        self, run: dict[str, Any], role: str, index: int, template: dict[str, Any]
    ) -> dict[str, Any]:
        md = run["metadata"]
        template = copy.deepcopy(template)
        pod_md = dict(template.get("metadata") or {})
        pod_md["labels"] = {**(pod_md.get("labels") or {}), ROLE: role}
        pod_md["name"] = f"{md['name']}-{role}-{index}"
        pod_md["ownerReferences"] = [controller_ref(run)]
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_md, "spec": template["spec"]}
        return self.api.create(
            self.api.resource(*PODS), md["namespace"], body, WriteOptions(manager="trainingrun")
        )


def _done(value: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": "Done",
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now(),
    }
