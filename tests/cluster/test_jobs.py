"""The Job controller stand-in: pods from the template, conditions, suspend, deletion."""

from __future__ import annotations

from typing import Any

from .cluster import Cluster


def job(name: str, namespace: str, code: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "x"}},
        "spec": {
            "template": {
                "metadata": {"labels": {"role": "trial"}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "ignored", "command": ["python", "-c", code]}
                    ],
                },
            },
            **spec,
        },
    }


def _condition(cluster: Cluster, namespace: str, name: str, kind: str) -> dict[str, Any] | None:
    found = cluster.get("jobs", name, namespace, group="batch") or {}
    for condition in (found.get("status") or {}).get("conditions") or []:
        if condition["type"] == kind and condition["status"] == "True":
            return dict(condition)
    return None


def _pods(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.list_objects("pods", namespace, label_selector=f"job-name={name}")


def test_job_runs_its_pod_and_completes(cluster: Cluster, namespace: str) -> None:
    created = cluster.create(job("ok", namespace, "print('hi')"))
    assert created["spec"]["backoffLimit"] == 6  # the API server's default
    cluster.wait_for(lambda: _condition(cluster, namespace, "ok", "Complete"), message="Complete")
    (pod,) = _pods(cluster, namespace, "ok")
    labels = pod["metadata"]["labels"]
    assert labels["role"] == "trial"
    assert labels["batch.kubernetes.io/controller-uid"] == created["metadata"]["uid"]
    assert pod["metadata"]["name"].startswith("ok-")
    (owner,) = pod["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Job", "ok", True)
    status = cluster.get("jobs", "ok", namespace, group="batch")["status"]  # type: ignore[index]
    assert status["succeeded"] == 1


def test_failed_pod_with_backoff_limit_zero_fails_the_job(cluster: Cluster, namespace: str) -> None:
    cluster.create(job("bad", namespace, "raise SystemExit(3)", backoffLimit=0))
    failed = cluster.wait_for(
        lambda: _condition(cluster, namespace, "bad", "Failed"), message="Failed"
    )
    assert failed["reason"] == "BackoffLimitExceeded"
    assert len(_pods(cluster, namespace, "bad")) == 1  # never retried


def test_backoff_limit_retries_failed_pods(cluster: Cluster, namespace: str) -> None:
    cluster.create(job("retry", namespace, "raise SystemExit(1)", backoffLimit=1))
    cluster.wait_for(lambda: _condition(cluster, namespace, "retry", "Failed"), message="Failed")
    assert len(_pods(cluster, namespace, "retry")) == 2


def test_suspended_job_has_no_pods_until_resumed(cluster: Cluster, namespace: str) -> None:
    cluster.create(job("held", namespace, "print('x')", suspend=True))
    cluster.wait_for(lambda: _condition(cluster, namespace, "held", "Suspended"), message="Sus")
    assert _pods(cluster, namespace, "held") == []
    cluster.call(
        lambda: cluster.api.patch(
            cluster.api.resource("batch", "v1", "jobs"),
            namespace,
            "held",
            "application/merge-patch+json",
            {"spec": {"suspend": False}},
        )
    )
    cluster.wait_for(lambda: _condition(cluster, namespace, "held", "Complete"), message="Done")


def test_foreground_deletion_removes_pods_first(cluster: Cluster, namespace: str) -> None:
    cluster.create(job("long", namespace, "import time; time.sleep(60)"))
    cluster.wait_for(lambda: _pods(cluster, namespace, "long"), message="pod")
    cluster.delete("jobs", "long", namespace, group="batch", propagation="Foreground")
    cluster.wait_for_deletion("jobs", "long", namespace, group="batch")
    assert _pods(cluster, namespace, "long") == []


def test_deleting_a_job_by_default_orphans_its_pods(cluster: Cluster, namespace: str) -> None:
    cluster.create(job("orphan", namespace, "import time; time.sleep(60)"))
    cluster.wait_for(lambda: _pods(cluster, namespace, "orphan"), message="pod")
    cluster.delete("jobs", "orphan", namespace, group="batch")
    cluster.wait_for_deletion("jobs", "orphan", namespace, group="batch")
    (pod,) = _pods(cluster, namespace, "orphan")
    assert not pod["metadata"].get("ownerReferences")
    cluster.delete("pods", pod["metadata"]["name"], namespace, grace_period=0)


def test_kubectl_reads_jobs(cluster: Cluster, namespace: str) -> None:
    cluster.create(job("seen", namespace, "print(1)"))
    done = cluster.kubectl("wait", "--for=condition=Complete", "job/seen", "-n", namespace)
    assert done.returncode == 0, done.stderr
    listed = cluster.kubectl("get", "jobs", "-n", namespace, "-o", "name")
    assert listed.stdout.split() == ["job.batch/seen"], listed.stderr


def test_indexed_job_runs_one_pod_per_index_reachable_by_its_dns_name(
    cluster: Cluster, namespace: str
) -> None:
    """Indexed completion, and pod DNS under a headless Service (the kubelet stand-in puts the
    named pod's address in an env value that is exactly its name)."""
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "peers", "namespace": namespace},
            "spec": {"clusterIP": "None", "selector": {"role": "trial"}},
        }
    )
    # Index 1 reports what node 0's name resolved to and its own index; index 0 waits a bit.
    code = (
        "import os, time; time.sleep(1); "
        "print(os.environ['JOB_COMPLETION_INDEX'], os.environ['PEER'], os.environ['HOSTNAME'])"
    )
    made = job("idx", namespace, code, completionMode="Indexed", completions=2, parallelism=2)
    template = made["spec"]["template"]
    template["spec"]["subdomain"] = "peers"
    template["spec"]["containers"][0]["env"] = [
        {"name": "PEER", "value": f"idx-0.peers.{namespace}.svc.cluster.local"}
    ]
    cluster.create(made)
    cluster.wait_for(lambda: _condition(cluster, namespace, "idx", "Complete"), message="Complete")
    pods = sorted(
        _pods(cluster, namespace, "idx"),
        key=lambda p: p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
    )
    assert [p["spec"]["hostname"] for p in pods] == ["idx-0", "idx-1"]
    assert [p["metadata"]["name"].rsplit("-", 1)[0] for p in pods] == ["idx-0", "idx-1"]
    node0_ip = pods[0]["status"]["podIP"]
    for index, pod in enumerate(pods):
        assert cluster.pod_logs(namespace, pod["metadata"]["name"]).split() == [
            str(index),
            node0_ip,
            f"idx-{index}",
        ]


def test_a_name_without_a_headless_service_is_left_as_written(
    cluster: Cluster, namespace: str
) -> None:
    made = job("plain", namespace, "import os; print(os.environ['PEER'])")
    made["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "PEER", "value": "plain-0.nowhere"}
    ]
    cluster.create(made)
    cluster.wait_for(
        lambda: _condition(cluster, namespace, "plain", "Complete"), message="Complete"
    )
    (pod,) = _pods(cluster, namespace, "plain")
    assert cluster.pod_logs(namespace, pod["metadata"]["name"]).strip() == "plain-0.nowhere"


_LISTEN_OR_CONNECT = """
import os, socket, time
host, port = os.environ["ENDPOINT"].rsplit(":", 1)
if os.environ["JOB_COMPLETION_INDEX"] == "0":
    server = socket.create_server(("", int(port)))  # every address, as torchrun's store
    connection, _ = server.accept()
    connection.sendall(b"hello")
    print("served", os.environ["ENDPOINT"])
else:
    for _ in range(200):
        try:
            with socket.create_connection((host, int(port)), timeout=5) as peer:
                print("got", peer.recv(5).decode(), os.environ["ENDPOINT"])
                break
        except OSError:
            time.sleep(0.1)
"""


def test_pods_listening_on_the_same_port_do_not_collide(cluster: Cluster, namespace: str) -> None:
    """`<pod DNS name>:<port>` resolves to the pod's address and a host port of its own for
    that port (pods share the host's ports here): two Indexed Jobs whose pod 0 both listen on
    29500 on every address run at once, each pod 1 reaching its own pod 0."""
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "mesh", "namespace": namespace},
            "spec": {"clusterIP": "None", "selector": {"role": "trial"}},
        }
    )
    for name in ("ja", "jb"):
        made = job(
            name, namespace, _LISTEN_OR_CONNECT, completionMode="Indexed", completions=2,
            parallelism=2,
        )  # fmt: skip
        template = made["spec"]["template"]
        template["spec"]["subdomain"] = "mesh"
        template["spec"]["containers"][0]["env"] = [
            {"name": "ENDPOINT", "value": f"{name}-0.mesh:29500"}
        ]
        cluster.create(made)
    endpoints = []
    for name in ("ja", "jb"):
        cluster.wait_for(
            lambda name=name: _condition(cluster, namespace, name, "Complete"),  # type: ignore[misc]
            message=f"{name} Complete",
        )
        pods = sorted(
            _pods(cluster, namespace, name),
            key=lambda p: p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"],
        )
        said = [cluster.pod_logs(namespace, p["metadata"]["name"]).split() for p in pods]
        assert said[0][0] == "served" and said[1][:2] == ["got", "hello"], said
        assert said[0][1] == said[1][2]  # both pods were given the same endpoint
        address, port = said[0][1].rsplit(":", 1)
        assert address == pods[0]["status"]["podIP"]
        endpoints.append(port)
    assert len(set(endpoints)) == 2, endpoints
