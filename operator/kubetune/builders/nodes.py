"""trainer.nodes: M pods per trial, as an Indexed batch/v1 Job plus the sweep's headless
Service, which need nothing beyond Kubernetes itself (no JobSet, no training operator); or,
where the JobSet API is installed, as a JobSet of that one Indexed Job (`as_jobset`), which
makes its own headless Service (operator/nodes_shape.py chooses, once per sweep).

Each pod is the trainer's trial pod (the same contract, hardening, admin pod policy and
labels as with one node), running torchrun for its node: node rank = the pod's completion
index, rendezvous at `<trial>-0.<service>:29500` (an Indexed Job names its pods' hostnames
`<job>-<index>`; with `subdomain` set to a headless Service selecting them, each gets that
DNS name). The pod of index 0 is the master and the trial's primary pod; global rank 0,
the only one that reports, runs there. Pure: the handler adds the owner references.
"""

from collections.abc import Mapping
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import (
    ATTEMPT_ANNOTATION,
    NODES_ANNOTATION,
    PRIMARY_ANNOTATION,
    WORKLOAD_ANNOTATION,
    trainer_command,
)
from kubetune.builders.pod import TRAINER_CONTAINER, build_trial_pod, trial_labels
from kubetune.builders.substitute import ParamValue
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SweepSpec
from kubetune.spec.workload_kinds import JOB, JOB_COMPLETION_INDEX, JOBSET, selector_text

# On the Job: the headless Service its pods' DNS names need; created with the Job.
RENDEZVOUS_ANNOTATION = "kubetune.dev/rendezvous-service"
RENDEZVOUS_PORT_NAME = "rendezvous"
# The JobSet's one replicated job: its Job's pods are `<trial>-node-0-<node rank>`.
JOBSET_REPLICATED_JOB = "node"


def nodes_of(spec: SweepSpec) -> int:
    return (spec.trainer.nodes or 1) if spec.trainer is not None else 1


def build_nodes_job(
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    number: int,
    params: Mapping[str, ParamValue],
    *,
    attempt: int = 1,
    default_image: str | None = None,
    policy: PodPolicy | None = None,
) -> dict[str, Any]:
    """The Indexed Job of trial `number` of a trainer sweep with trainer.nodes > 1."""
    assert spec.trainer is not None
    nodes = nodes_of(spec)
    trial = conventions.trial_name(sweep.name, number)
    service = conventions.rendezvous_service(sweep.name)
    pod = build_trial_pod(
        sweep, spec, number, params, attempt=attempt, default_image=default_image, policy=policy
    )
    pod_meta, pod_spec = pod["metadata"], pod["spec"]
    container = next(c for c in pod_spec["containers"] if c["name"] == TRAINER_CONTAINER)
    container["command"] = trainer_command(spec.trainer.processes(), nodes=nodes)
    container["env"] += [
        {
            "name": conventions.ENV_NODE_RANK,
            "valueFrom": {
                "fieldRef": {"fieldPath": f"metadata.annotations['{JOB_COMPLETION_INDEX}']"}
            },
        },
        {
            "name": conventions.ENV_RENDEZVOUS_ENDPOINT,
            "value": f"{trial}-0.{service}:{conventions.RENDEZVOUS_PORT}",
        },
    ]
    container.setdefault("ports", []).append(
        {
            "name": RENDEZVOUS_PORT_NAME,
            "containerPort": conventions.RENDEZVOUS_PORT,
            "protocol": "TCP",
        }
    )
    pod_spec["subdomain"] = service
    # The Job controller names the pods; Kueue admits the Job, so its pods carry no queue
    # label (Kueue's pod integration would gate each pod again).
    pod_meta.pop("name", None)
    pod_meta.pop("namespace", None)
    pod_meta["labels"].pop(conventions.LABEL_KUEUE_QUEUE, None)
    pod_meta["annotations"][PRIMARY_ANNOTATION] = selector_text({JOB_COMPLETION_INDEX: "0"})
    pod_meta["annotations"][WORKLOAD_ANNOTATION] = f"{JOB.api_version}/{JOB.kind}"
    pod_meta["annotations"][NODES_ANNOTATION] = str(nodes)
    annotations = {ATTEMPT_ANNOTATION: str(attempt), RENDEZVOUS_ANNOTATION: service}
    job: dict[str, Any] = {
        "apiVersion": JOB.api_version,
        "kind": JOB.kind,
        "metadata": {
            "name": trial,
            "namespace": sweep.namespace,
            "labels": trial_labels(sweep.name, trial),
            "annotations": annotations,
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": nodes,
            "parallelism": nodes,
            "template": {"metadata": pod_meta, "spec": pod_spec},
        },
    }
    # One failed pod fails the whole trial: a rank cannot be rerun alone.
    JOB.run_once(job)
    if spec.queue_name is not None:
        # Kueue admits the Job (all its pods' resources) as one unit, then unsuspends it.
        job["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] = spec.queue_name
        JOB.suspend(job)
    return job


def rendezvous_service(sweep: str, namespace: str) -> dict[str, Any]:
    """The sweep's headless Service: DNS names for its trial pods (selector: the sweep's
    trials), published before the pods are ready, since the rendezvous comes first."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": conventions.rendezvous_service(sweep),
            "namespace": namespace,
            "labels": {
                conventions.LABEL_SWEEP: sweep,
                conventions.LABEL_MANAGED_BY: conventions.MANAGED_BY,
                conventions.LABEL_COMPONENT: conventions.COMPONENT_RENDEZVOUS,
            },
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {
                conventions.LABEL_SWEEP: sweep,
                conventions.LABEL_COMPONENT: conventions.COMPONENT_TRIAL,
            },
            "ports": [
                {
                    "name": RENDEZVOUS_PORT_NAME,
                    "port": conventions.RENDEZVOUS_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


def as_jobset(job: dict[str, Any]) -> dict[str, Any]:
    """The same trial (build_nodes_job's Indexed Job) as a JobSet of that one Job.

    JobSet v1alpha2 gives each pod the DNS name
    `<jobset>-<replicatedJob>-<job index>-<pod index>.<subdomain>` from a headless Service it
    creates (spec.network: enableDNSHostnames, subdomain, publishNotReadyAddresses), so the
    sweep's own Service is not needed. successPolicy All, failurePolicy.maxRestarts 0 (a
    rank cannot be rerun alone; kubetune requeues a disrupted trial itself), startupPolicy
    AnyOrder (every node must be up for the rendezvous). Kueue admits (unsuspends) the
    JobSet as one unit, as it does the Job.
    """
    import copy

    job = copy.deepcopy(job)
    meta, spec = job["metadata"], job["spec"]
    trial = str(meta["name"])
    annotations = {k: v for k, v in meta["annotations"].items() if k != RENDEZVOUS_ANNOTATION}
    suspended = bool(spec.pop("suspend", False))
    template = spec["template"]
    pod_meta, pod_spec = template["metadata"], template["spec"]
    # JobSet sets the pods' subdomain (network.subdomain) and makes that Service.
    pod_spec.pop("subdomain", None)
    container = next(c for c in pod_spec["containers"] if c["name"] == TRAINER_CONTAINER)
    master = f"{trial}-{JOBSET_REPLICATED_JOB}-0-0.{trial}:{conventions.RENDEZVOUS_PORT}"
    for env in container["env"]:
        if env["name"] == conventions.ENV_RENDEZVOUS_ENDPOINT:
            env["value"] = master
    jobset: dict[str, Any] = {
        "apiVersion": JOBSET.api_version,
        "kind": JOBSET.kind,
        "metadata": {**meta, "annotations": annotations},
        "spec": {
            "network": {
                "enableDNSHostnames": True,
                "subdomain": trial,
                "publishNotReadyAddresses": True,
            },
            "startupPolicy": {"startupPolicyOrder": "AnyOrder"},
            "successPolicy": {"operator": "All"},
            "replicatedJobs": [
                {"name": JOBSET_REPLICATED_JOB, "replicas": 1, "template": {"spec": spec}}
            ],
        },
    }
    JOBSET.run_once(jobset)
    pod_meta["annotations"][PRIMARY_ANNOTATION] = selector_text(JOBSET.primary_labels(jobset))
    pod_meta["annotations"][WORKLOAD_ANNOTATION] = f"{JOBSET.api_version}/{JOBSET.kind}"
    if suspended:
        JOBSET.suspend(jobset)
    return jobset
