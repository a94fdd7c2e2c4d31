"""The simulated kubelet: pods run as local processes with Kubernetes' observable behaviour."""

from __future__ import annotations

import base64
import json
import socket
import sys
import time
from typing import Any

import pytest

from .cluster import Cluster
from .kubelet import OOM_ANNOTATION


def pod(name: str, namespace: str, code: str, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": "ignored:latest",
        "command": ["python", "-c", code],
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, **spec.pop("metadata", {})},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def terminated(p: dict[str, Any]) -> dict[str, Any]:
    state: dict[str, Any] = p["status"]["containerStatuses"][0]["state"]["terminated"]
    return state


def test_runs_the_command_with_resolved_environment(cluster: Cluster, namespace: str) -> None:
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hf", "namespace": namespace},
            "data": {"token": base64.b64encode(b"s3cret").decode()},
        }
    )
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": namespace},
            "data": {"mode": "fast", "level": "3"},
        }
    )
    code = (
        "import json, os, sys; json.dump({k: os.environ.get(k) for k in "
        "['TOKEN','MODE','IP','NAME','NS','GREETING','CFG_level','EXE']}, sys.stdout); "
        "print(); print(os.getcwd())"
    )
    cluster.create(
        pod(
            "env",
            namespace,
            code,
            container={
                "env": [
                    {
                        "name": "TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
                    },
                    {
                        "name": "MODE",
                        "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}},
                    },
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                    {"name": "GREETING", "value": "hello $(NAME)"},
                    {"name": "EXE", "value": sys.executable},
                ],
                "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            },
        )
    )
    done = cluster.wait_for_pod_phase(namespace, "env", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", cluster.pod_logs(namespace, "env")
    first, cwd = cluster.pod_logs(namespace, "env").splitlines()
    env = json.loads(first)
    ip = done["status"]["podIP"]
    assert ip.startswith("127.") and ip != "127.0.0.1"
    assert env == {
        "TOKEN": "s3cret",
        "MODE": "fast",
        "IP": ip,
        "NAME": "env",
        "NS": namespace,
        "GREETING": "hello env",
        "CFG_level": "3",
        "EXE": sys.executable,
    }
    assert cwd != str(cluster.workdir) and "env" in cwd  # a private temporary directory
    assert done["spec"]["nodeName"] == "node-1"
    assert terminated(done)["exitCode"] == 0 and terminated(done)["reason"] == "Completed"
    conditions = {c["type"]: c["status"] for c in done["status"]["conditions"]}
    assert conditions == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "False",
        "Ready": "False",
    }


def test_phases_and_failure_exit_code(cluster: Cluster, namespace: str) -> None:
    cluster.create(pod("slow", namespace, "import time, sys; time.sleep(1.5); sys.exit(3)"))
    running = cluster.wait_for_pod_phase(namespace, "slow", "Running")
    assert running["status"]["containerStatuses"][0]["state"].get("running")
    assert running["status"]["containerStatuses"][0]["ready"] is True
    failed = cluster.wait_for_pod_phase(namespace, "slow", "Failed", "Succeeded")
    assert failed["status"]["phase"] == "Failed"
    assert terminated(failed)["exitCode"] == 3 and terminated(failed)["reason"] == "Error"


def test_termination_message_file_and_fallback_to_logs(cluster: Cluster, namespace: str) -> None:
    writes = (
        "import os; open(os.environ['KUBETUNE_TERMINATION_LOG'], 'w')"
        '.write(\'{"status": "succeeded"}\')'
    )
    cluster.create(pod("msg", namespace, writes))
    done = cluster.wait_for_pod_phase(namespace, "msg", "Succeeded", "Failed")
    assert terminated(done)["message"] == '{"status": "succeeded"}'

    # A custom terminationMessagePath given to the process through an env var is remapped.
    custom = "import os; open(os.environ['MSG'], 'w').write('custom path')"
    cluster.create(
        pod(
            "custom",
            namespace,
            custom,
            container={
                "terminationMessagePath": "/tmp/my-message",
                "env": [{"name": "MSG", "value": "/tmp/my-message"}],
            },
        )
    )
    done = cluster.wait_for_pod_phase(namespace, "custom", "Succeeded", "Failed")
    assert terminated(done)["message"] == "custom path"

    crash = "print('some output'); raise SystemExit('fatal: out of patience')"
    cluster.create(
        pod(
            "fallback",
            namespace,
            crash,
            container={"terminationMessagePolicy": "FallbackToLogsOnError"},
        )
    )
    done = cluster.wait_for_pod_phase(namespace, "fallback", "Failed")
    assert terminated(done)["message"] == "some output\nfatal: out of patience"


def test_graceful_deletion_sends_sigterm_then_removes_the_pod(
    cluster: Cluster, namespace: str
) -> None:
    code = (
        "import signal, sys, time\n"
        "def bye(*_):\n    print('got SIGTERM', flush=True); sys.exit(143)\n"
        "signal.signal(signal.SIGTERM, bye)\nprint('ready', flush=True)\n"
        "while True: time.sleep(0.05)"
    )
    cluster.create(pod("graceful", namespace, code))
    cluster.wait_for(lambda: "ready" in cluster.pod_logs(namespace, "graceful"))
    cluster.delete("pods", "graceful", namespace)
    cluster.wait_for_deletion("pods", "graceful", namespace, timeout=10)


def test_grace_period_expiry_kills(cluster: Cluster, namespace: str) -> None:
    stubborn = (
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\nwhile True: time.sleep(0.05)"
    )
    cluster.create(pod("stubborn", namespace, stubborn, terminationGracePeriodSeconds=1))
    cluster.wait_for(lambda: "ready" in cluster.pod_logs(namespace, "stubborn"))
    started = time.monotonic()
    cluster.delete("pods", "stubborn", namespace)
    terminating = cluster.get("pods", "stubborn", namespace)
    assert terminating is not None and terminating["metadata"]["deletionTimestamp"]
    cluster.wait_for_deletion("pods", "stubborn", namespace, timeout=10)
    assert time.monotonic() - started >= 0.9


def test_gpu_capacity_keeps_pods_pending_until_it_frees(cluster: Cluster, namespace: str) -> None:
    cluster.add_node("gpu-box", gpus=2)
    hold = "import time; time.sleep(30)"
    limits = {"resources": {"limits": {"nvidia.com/gpu": 2}}}
    selector = {"nodeSelector": {"kubernetes.io/hostname": "gpu-box"}}
    cluster.create(pod("big1", namespace, hold, container=limits, **selector))
    cluster.wait_for_pod_phase(namespace, "big1", "Running")
    cluster.create(pod("big2", namespace, hold, container=limits, **selector))

    def unschedulable() -> bool:
        p = cluster.get("pods", "big2", namespace) or {}
        conds = (p.get("status") or {}).get("conditions") or []
        return any(
            c["type"] == "PodScheduled"
            and c["status"] == "False"
            and c.get("reason") == "Unschedulable"
            for c in conds
        )

    cluster.wait_for(unschedulable, message="big2 unschedulable")
    pending = cluster.get("pods", "big2", namespace)
    assert pending is not None and pending["status"]["phase"] == "Pending"
    assert "Insufficient nvidia.com/gpu" in next(
        c["message"] for c in pending["status"]["conditions"] if c["type"] == "PodScheduled"
    )
    cluster.delete("pods", "big1", namespace, grace_period=0)
    running = cluster.wait_for_pod_phase(namespace, "big2", "Running")
    assert running["spec"]["nodeName"] == "gpu-box"

    def started() -> str | None:
        out = cluster.kubectl("describe", "-n", namespace, "pod", "big2").stdout
        return out if "Started container main" in out else None

    # Like a real kubelet, the stand-in posts "Started" after it reports the pod Running: wait
    # for it (it wrote the scheduler's Events before that one, so they are there too).
    described = cluster.wait_for(started, message="big2's Started Event")
    assert "FailedScheduling" in described and "Insufficient nvidia.com/gpu" in described
    assert "Successfully assigned" in described and "Started container main" in described
    cluster.delete("pods", "big2", namespace, grace_period=0)


def test_lost_node_fails_its_pods(cluster: Cluster, namespace: str) -> None:
    cluster.add_node("flaky", gpus=1)
    cluster.create(
        pod(
            "victim",
            namespace,
            "import time; time.sleep(30)",
            nodeSelector={"kubernetes.io/hostname": "flaky"},
        )
    )
    cluster.wait_for_pod_phase(namespace, "victim", "Running")
    cluster.lose_node("flaky")
    failed = cluster.wait_for_pod_phase(namespace, "victim", "Failed")
    assert failed["status"]["reason"] == "NodeLost"
    node = cluster.get("nodes", "flaky", namespace="")
    assert node is not None
    assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"] == [
        "Unknown"
    ]


def test_eviction_and_oom_kill(cluster: Cluster, namespace: str) -> None:
    cluster.create(pod("evictee", namespace, "import time; time.sleep(30)"))
    cluster.wait_for_pod_phase(namespace, "evictee", "Running")
    cluster.evict_pod(namespace, "evictee")
    evicted = cluster.wait_for_pod_phase(namespace, "evictee", "Failed")
    assert evicted["status"]["reason"] == "Evicted"
    assert "low on resource" in evicted["status"]["message"]

    cluster.create(
        pod(
            "hog",
            namespace,
            "import time; time.sleep(30)",
            metadata={"annotations": {OOM_ANNOTATION: "0.3"}},
        )
    )
    oom = cluster.wait_for_pod_phase(namespace, "hog", "Failed")
    assert terminated(oom)["reason"] == "OOMKilled"
    assert terminated(oom)["exitCode"] == 137


def test_signal_exit_codes(cluster: Cluster, namespace: str) -> None:
    cluster.create(pod("killed", namespace, "import os, signal; os.kill(os.getpid(), 9)"))
    done = cluster.wait_for_pod_phase(namespace, "killed", "Failed")
    assert terminated(done)["exitCode"] == 137 and terminated(done)["signal"] == 9


def test_each_pod_has_its_own_ip_so_both_can_bind_the_same_port(
    cluster: Cluster, namespace: str
) -> None:
    serve = (
        "import os, socket, time\ns = socket.socket()\n"
        "s.bind((os.environ['IP'], 9400)); s.listen()\nprint('bound', flush=True)\n"
        "while True:\n    c, _ = s.accept(); c.sendall(os.environ['NAME'].encode()); "
        "c.close()"
    )
    env = {
        "env": [
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "ports": [{"name": "metrics", "containerPort": 9400}],
    }
    for name in ("one", "two"):
        cluster.create(pod(name, namespace, serve, container=env))
    for name in ("one", "two"):
        cluster.wait_for(lambda: "bound" in cluster.pod_logs(namespace, name))  # noqa: B023
    answers = {}
    for name in ("one", "two"):
        ip = cluster.pod_ip(namespace, name)
        assert ip is not None
        with socket.create_connection((ip, 9400), timeout=5) as conn:
            answers[name] = conn.recv(100).decode()
    assert answers == {"one": "one", "two": "two"}
    assert cluster.pod_ip(namespace, "one") != cluster.pod_ip(namespace, "two")
    for name in ("one", "two"):
        cluster.delete("pods", name, namespace, grace_period=0)


def test_missing_secret_blocks_the_container(cluster: Cluster, namespace: str) -> None:
    cluster.create(
        pod(
            "needs",
            namespace,
            "print('started')",
            container={
                "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "later", "key": "t"}}}]
            },
        )
    )

    def waiting_reason() -> str | None:
        p = cluster.get("pods", "needs", namespace) or {}
        for s in (p.get("status") or {}).get("containerStatuses") or []:
            return str(s["state"].get("waiting", {}).get("reason"))
        return None

    cluster.wait_for(lambda: waiting_reason() == "CreateContainerConfigError")
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "later", "namespace": namespace},
            "stringData": {"t": "x"},
        }
    )
    assert cluster.wait_for_pod_phase(namespace, "needs", "Succeeded")


def test_restart_policy_on_failure_restarts(cluster: Cluster, namespace: str) -> None:
    code = (
        "import os, sys\nf = 'count'\nn = int(open(f).read()) if os.path.exists(f) else 0\n"
        "open(f, 'w').write(str(n + 1))\nsys.exit(0 if n >= 1 else 1)"
    )
    cluster.create(pod("retry", namespace, code, restartPolicy="OnFailure"))
    done = cluster.wait_for_pod_phase(namespace, "retry", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["containerStatuses"][0]["restartCount"] == 1


@pytest.mark.parametrize("policy", ["Foreground", "Background"])
def test_owner_deletion_collects_pods(cluster: Cluster, namespace: str, policy: str) -> None:
    owner = cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "owner", "namespace": namespace},
        }
    )
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": True,
    }
    cluster.create(
        pod("child", namespace, "import time; time.sleep(30)", metadata={"ownerReferences": [ref]})
    )
    cluster.wait_for_pod_phase(namespace, "child", "Running")
    result = cluster.kubectl(
        "delete",
        "-n",
        namespace,
        "configmap",
        "owner",
        f"--cascade={policy.lower()}",
        "--wait=false",
    )
    assert result.returncode == 0, result.stderr
    cluster.wait_for_deletion("pods", "child", namespace)
    cluster.wait_for_deletion("configmaps", "owner", namespace)


def test_volume_mount_paths_map_to_a_shared_pod_folder(cluster: Cluster, namespace: str) -> None:
    writer = (
        "import os, sys; open(os.path.join(os.environ['OUT'], 'r.json'), 'w').write('1');"
        "print(sys.argv[1])"
    )

    def create_mounting(name: str, script: str) -> None:
        """A pod running script with emptyDir "work" at /workspace and OUT=/workspace/out."""
        cluster.create(
            pod(
                name,
                namespace,
                script,
                volumes=[{"name": "work", "emptyDir": {}}],
                container={
                    "args": ["/workspace/run"],
                    "env": [{"name": "OUT", "value": "/workspace/out"}],
                    "volumeMounts": [{"name": "work", "mountPath": "/workspace"}],
                },
            )
        )

    create_mounting("vol", writer)
    done = cluster.wait_for_pod_phase(namespace, "vol", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Failed"  # /workspace/out does not exist yet: honest
    assert "No such file or directory" in cluster.pod_logs(namespace, "vol")
    fixed = writer.replace("open(", "os.makedirs(os.environ['OUT'], exist_ok=True); open(", 1)
    create_mounting("vol2", fixed)
    done = cluster.wait_for_pod_phase(namespace, "vol2", "Succeeded", "Failed")
    assert done["status"]["phase"] == "Succeeded", cluster.pod_logs(namespace, "vol2")
    printed = cluster.pod_logs(namespace, "vol2").strip()
    assert printed.endswith("/volumes/work/run") and printed.startswith(str(cluster.workdir))


def test_active_deadline_fails_the_pod(cluster: Cluster, namespace: str) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))\n"
        "while True: time.sleep(0.05)"
    )
    cluster.create(pod("overdue", namespace, code, activeDeadlineSeconds=1))
    failed = cluster.wait_for_pod_phase(namespace, "overdue", "Failed", timeout=15)
    assert failed["status"]["reason"] == "DeadlineExceeded"
    assert terminated(failed)["exitCode"] == 143  # it got SIGTERM and exited on it
