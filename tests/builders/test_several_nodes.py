"""trainer.nodes: M pods per trial as an Indexed Job with the sweep's headless Service."""

from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.contract import NODES_ANNOTATION
from kubetune.builders.nodes import RENDEZVOUS_ANNOTATION, rendezvous_service
from kubetune.builders.workload import build_trial
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
        f"--master-addr=$({conventions.ENV_RENDEZVOUS_HOST})",
        f"--master-port={conventions.RENDEZVOUS_PORT}",
        "-m",
        "kubetune_trainer",
    ]
    env = {v["name"]: v for v in container["env"]}
    assert env[conventions.ENV_RENDEZVOUS_HOST]["value"] == f"big-t0003-0.{service}"
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
