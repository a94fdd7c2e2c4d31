"""trainer.nodes: M pods per trial as an Indexed Job with the sweep's headless Service, or
as a JobSet of that Job where the JobSet API is installed (operator/nodes_shape.py)."""

import asyncio
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.contract import ATTEMPT_ANNOTATION, NODES_ANNOTATION, WORKLOAD_ANNOTATION
from kubetune.builders.nodes import (
    JOBSET_REPLICATED_JOB,
    RENDEZVOUS_ANNOTATION,
    as_jobset,
    rendezvous_service,
)
from kubetune.builders.workload import build_trial
from kubetune.operator.kube import ApiError
from kubetune.operator.nodes_shape import (
    NODES_WORKLOAD_ANNOTATION,
    choose,
    fits_jobset,
    is_nodes_job,
    recorded,
    shaped,
)
from kubetune.operator.pod_state import gpus_of, is_primary, job_view
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep
from kubetune.spec.checks import semantic_problems
from kubetune.spec.errors import SpecError
from kubetune.spec.workload_kinds import JOB_COMPLETION_INDEX


def _sweep(trainer: dict[str, Any], name: str = "big", **spec: Any) -> HyperparameterSweep:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": name, "namespace": "team"},
            "spec": {"trainer": {"image": "trainer:1", **trainer}, **spec},
        }
    )


def _job(trainer: dict[str, Any], **spec: Any) -> dict[str, Any]:
    sweep = _sweep(trainer, **spec)
    return build_trial(sweep, effective_spec(sweep.spec), 3, {}, attempt=2)


def test_nodes_make_an_indexed_job_of_that_many_trainer_pods() -> None:
    job = _job({"nodes": 2, "gpus": 4})
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    assert job["metadata"]["name"] == "big-t0003"
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 2, 2)
    assert spec["backoffLimit"] == 0  # one failed pod (rank) fails the trial
    assert "suspend" not in spec
    service = conventions.rendezvous_service("big")
    assert job["metadata"]["annotations"][RENDEZVOUS_ANNOTATION] == service
    pod = spec["template"]
    assert pod["spec"]["subdomain"] == service
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["command"] == [
        "python",
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=4",
        f"--node-rank=$({conventions.ENV_NODE_RANK})",
        "--rdzv-backend=static",
        f"--rdzv-endpoint=$({conventions.ENV_RENDEZVOUS_ENDPOINT})",
        "-m",
        "kubetune_trainer",
    ]
    env = {v["name"]: v for v in container["env"]}
    assert env[conventions.ENV_RENDEZVOUS_ENDPOINT]["value"] == f"big-t0003-0.{service}:29500"
    field = env[conventions.ENV_NODE_RANK]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == f"metadata.annotations['{JOB_COMPLETION_INDEX}']"
    # The trial contract reaches every node; the launcher's settings stay out of its config.
    assert env[conventions.ENV_TRIAL]["value"] == "big-t0003"
    assert '"nodes"' not in env[conventions.ENV_TRAINER_CONFIG]["value"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    meta = pod["metadata"]
    assert "name" not in meta and "namespace" not in meta
    assert meta["labels"][conventions.LABEL_TRIAL] == "big-t0003"
    assert meta["annotations"][NODES_ANNOTATION] == "2"
    # Node 0's pod is the primary one (global rank 0 reports from it); it counts 2 x 4 GPUs.
    node = {"metadata": {**meta, "labels": {**meta["labels"]}}, "spec": pod["spec"]}
    node["metadata"]["labels"][JOB_COMPLETION_INDEX] = "0"
    assert is_primary(node) and gpus_of(node) == 8
    node["metadata"]["labels"][JOB_COMPLETION_INDEX] = "1"
    assert not is_primary(node)


def test_one_node_stays_a_pod() -> None:
    assert _job({"nodes": 1, "gpus": 2})["kind"] == "Pod"


def test_kueue_admits_the_whole_job_as_one_unit() -> None:
    job = _job({"nodes": 2}, queueName="gpu-queue")
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "gpu-queue"
    # Its pods are not queued one by one.
    assert conventions.LABEL_KUEUE_QUEUE not in job["spec"]["template"]["metadata"]["labels"]
    # Queued, the trial counts the GPUs of all its pods.
    job["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "limits": {"nvidia.com/gpu": 2}
    }
    job["metadata"]["uid"] = "u1"
    seen = job_view(job)
    assert seen is not None and seen.kind == "queued" and seen.gpus == 4


def test_a_failed_indexed_job_fails_the_trial() -> None:
    job = _job({"nodes": 2})
    job["metadata"]["uid"] = "u1"
    job["status"] = {
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    }
    seen = job_view(job)
    assert seen is not None and seen.kind == "ended"
    assert seen.ending is not None and seen.ending.workload_failed == "BackoffLimitExceeded"


def test_the_rendezvous_service_is_headless_and_selects_the_sweeps_trials() -> None:
    service = rendezvous_service("big", "team")
    assert service["metadata"]["name"] == conventions.rendezvous_service("big")
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {
        conventions.LABEL_SWEEP: "big",
        conventions.LABEL_COMPONENT: conventions.COMPONENT_TRIAL,
    }
    long = "a" * 63
    assert len(conventions.rendezvous_service(long)) <= 63
    assert conventions.rendezvous_service("9lives").startswith("kt-")


def test_the_global_batch_divides_by_every_process_of_every_node() -> None:
    with pytest.raises(SpecError, match=r"batch of all 6 processes"):
        _sweep({"nodes": 2, "gpus": 3, "args": {"per_device_train_batch_size": 8}})
    with pytest.raises(SpecError, match="nodes: more than one node is for mode train"):
        _sweep({"nodes": 2, "mode": "generate"})


def test_kubetune_run_refuses_several_nodes_in_one_line() -> None:
    sweep = _sweep({"nodes": 2})
    problems = semantic_problems(sweep, for_cluster=False)
    assert problems == [
        "spec.trainer.nodes: 2 nodes run on a cluster only (one pod per node); `kubetune run` "
        "runs one node: use trainer.gpus for several local processes"
    ]
    assert semantic_problems(sweep) == []


def test_pod_hostnames_must_fit_a_dns_label() -> None:
    sweep = _sweep({"nodes": 8}, name="n" * 56)  # nnn...-t0000-7: 64 characters
    (problem,) = semantic_problems(sweep)
    assert problem.startswith("spec.trainer.nodes: pod hostnames <trial>-<index>")
    assert problem.endswith("shorten metadata.name to 55 or fewer")
    assert semantic_problems(_sweep({"nodes": 8}, name="n" * 55)) == []


# --- the JobSet shape (where the JobSet API is installed) ------------------------------


def test_as_jobset_wraps_the_same_indexed_job_with_jobset_networking() -> None:
    job = _job({"nodes": 2, "gpus": 4})
    jobset = as_jobset(job)
    assert (jobset["apiVersion"], jobset["kind"]) == ("jobset.x-k8s.io/v1alpha2", "JobSet")
    meta = jobset["metadata"]
    assert meta["name"] == "big-t0003" and meta["labels"] == job["metadata"]["labels"]
    # JobSet makes the headless Service: none of ours, and no subdomain of ours on the pods.
    assert RENDEZVOUS_ANNOTATION not in meta["annotations"]
    assert meta["annotations"][ATTEMPT_ANNOTATION] == "2"
    spec = jobset["spec"]
    assert spec["network"] == {
        "enableDNSHostnames": True,
        "subdomain": "big-t0003",
        "publishNotReadyAddresses": True,
    }
    assert spec["failurePolicy"] == {"maxRestarts": 0}
    assert spec["successPolicy"] == {"operator": "All"}
    assert "suspend" not in spec
    (rjob,) = spec["replicatedJobs"]
    assert (rjob["name"], rjob["replicas"]) == (JOBSET_REPLICATED_JOB, 1)
    inner = rjob["template"]["spec"]
    assert (inner["completionMode"], inner["completions"], inner["backoffLimit"]) == (
        "Indexed",
        2,
        0,
    )
    pod = inner["template"]
    assert "subdomain" not in pod["spec"]
    (container,) = pod["spec"]["containers"]
    env = {v["name"]: v for v in container["env"]}
    # Node 0's pod by the name JobSet gives it: <jobset>-<rjob>-<job index>-<pod index>.
    assert env[conventions.ENV_RENDEZVOUS_ENDPOINT]["value"] == (
        "big-t0003-node-0-0.big-t0003:29500"
    )
    assert env[conventions.ENV_NODE_RANK] == next(
        v for v in job["spec"]["template"]["spec"]["containers"][0]["env"]
        if v["name"] == conventions.ENV_NODE_RANK
    )  # fmt: skip
    annotations = pod["metadata"]["annotations"]
    assert annotations[WORKLOAD_ANNOTATION] == "jobset.x-k8s.io/v1alpha2/JobSet"
    primary = {
        "jobset.sigs.k8s.io/replicatedjob-name": "node",
        "jobset.sigs.k8s.io/job-index": "0",
        JOB_COMPLETION_INDEX: "0",
    }
    assert is_primary({"metadata": {"labels": primary, "annotations": annotations}})
    assert not is_primary(
        {"metadata": {"labels": {**primary, JOB_COMPLETION_INDEX: "1"}, "annotations": annotations}}
    )
    # The Indexed Job it came from is left as it was.
    assert job["metadata"]["annotations"][RENDEZVOUS_ANNOTATION]


def test_kueue_admits_the_jobset_as_one_unit() -> None:
    jobset = as_jobset(_job({"nodes": 2}, queueName="gpu-queue"))
    assert jobset["spec"]["suspend"] is True
    assert jobset["metadata"]["labels"][conventions.LABEL_KUEUE_QUEUE] == "gpu-queue"
    inner = jobset["spec"]["replicatedJobs"][0]["template"]["spec"]
    assert "suspend" not in inner


class _Discovery:
    def __init__(self, served: bool | None) -> None:
        self.served = served  # None: discovery fails
        self.asked = 0

    async def resource_plural(self, group: str, version: str, kind: str) -> str | None:
        self.asked += 1
        if self.served is None:
            raise ApiError(503, "ServiceUnavailable", "no answer")
        return "jobsets" if self.served and (group, kind) == ("jobset.x-k8s.io", "JobSet") else None


@pytest.mark.parametrize(
    ("setting", "served", "expected"),
    [
        ("auto", True, "JobSet"),
        ("auto", False, "Job"),
        ("auto", None, "Job"),
        ("jobset", False, "JobSet"),  # forced: a missing CRD then refuses the create
        ("job", True, "Job"),
    ],
)
def test_the_shape_follows_the_setting_and_discovery(
    setting: str, served: bool | None, expected: str
) -> None:
    kube = _Discovery(served)
    got = asyncio.run(choose(kube, setting, _job({"nodes": 2})))  # type: ignore[arg-type]
    assert got == expected
    assert kube.asked == (1 if setting == "auto" else 0)


def test_auto_takes_the_job_where_jobset_pod_names_would_not_fit() -> None:
    sweep = _sweep({"nodes": 8}, name="n" * 55)  # Job hostnames fit; JobSet's are 7 longer
    job = build_trial(sweep, effective_spec(sweep.spec), 0, {})
    assert not fits_jobset(job)
    assert asyncio.run(choose(_Discovery(True), "auto", job)) == "Job"  # type: ignore[arg-type]
    assert fits_jobset(_job({"nodes": 8}))


def test_only_a_recorded_kind_of_ours_is_kept() -> None:
    assert recorded({"annotations": {NODES_WORKLOAD_ANNOTATION: "JobSet"}}) == "JobSet"
    assert recorded({"annotations": {NODES_WORKLOAD_ANNOTATION: "Job"}}) == "Job"
    assert recorded({"annotations": {NODES_WORKLOAD_ANNOTATION: "Pod"}}) is None
    assert recorded({}) is None
    assert is_nodes_job(_job({"nodes": 2})) and not is_nodes_job(as_jobset(_job({"nodes": 2})))
    assert shaped(_job({"nodes": 2}), "Job")["kind"] == "Job"
