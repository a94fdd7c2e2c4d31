"""The simulated kubelet (with a one-line scheduler): pods become local processes.

Each pod gets its own loopback address (127.0.0.2, 127.0.0.3, ...), a temporary working
directory, and a file per container for logs and for the termination message.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import ipaddress
import os
import random
import signal
import socket
import traceback
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import TERMINAL_PHASES, Api, WriteOptions
from .errors import ApiError
from .meta import now
from .pod_logs import stream_log
from .pod_status import Condition, container_status, merge_conditions
from .podenv import ConfigError, Unresolved, process_launch
from .processes import die_with_parent
from .scheduling import GPU, Node, place
from .selectors import label_matcher
from .store import Event
from .termination import exit_code_of, terminated_state, termination_message

OOM_ANNOTATION = "sim.kubetune.dev/oom-kill-after-seconds"


@dataclass
class Container:
    name: str
    log: Path
    message_file: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started: str | None = None  # when the current process started
    terminated: dict[str, Any] | None = None


@dataclass
class PodRun:
    namespace: str
    name: str
    uid: str
    ip: str
    node: str
    workdir: Path
    containers: dict[str, Container] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    # Why the kubelet itself ended the pod: (phase reason, message, container reason).
    killed: tuple[str, str, str] | None = None
    stopping: bool = False


class Kubelet:
    def __init__(self, api: Api, root: Path) -> None:
        self.api = api
        self.root = root
        self.nodes: dict[str, Node] = {}
        self.runs: dict[str, PodRun] = {}  # by pod uid
        self.extra_env: dict[str, str] = {}
        self.errors: list[str] = []  # unexpected exceptions in kubelet tasks
        self.api_port = 0
        self.restart_backoff = 0.5  # seconds, doubling up to 5 (real kubelet: 10s up to 5m)
        # A random 127.x.y.0/16-ish block per cluster, so that clusters of parallel test
        # sessions never hand out the same pod address (all of 127/8 routes to lo).
        self._next_ip = int(ipaddress.IPv4Address(f"127.{random.randint(10, 250)}.0.2"))
        # Pods share the host's ports: (pod uid, containerPort) -> the host port standing in
        # for it in `<pod DNS name>:<port>` env values (_cluster_dns).
        self._host_ports: dict[tuple[str, int], int] = {}
        self._pending_reconcile = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self.pods = api.resource("", "v1", "pods")
        api.pod_is_running = self._holds_process
        api.store.listeners.append(self._on_event)

    @staticmethod
    def _strict() -> WriteOptions:
        """The kubelet's own writes: an unknown field is a bug of the simulation."""
        return WriteOptions(field_validation="Strict", manager="kubelet")

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        self._kick()

    async def stop(self) -> None:
        self._started = False
        for run in list(self.runs.values()):
            self._signal(run, signal.SIGKILL)
        tasks = [r.task for r in self.runs.values() if r.task] + list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._record_failure)
        return task

    def _record_failure(self, task: asyncio.Task[Any]) -> None:
        """A kubelet task that raised is a bug in the simulation: keep it for the fixture."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        trace = "".join(traceback.format_exception(exc)) if exc else ""
        self.errors.append(f"kubelet task {task.get_coro()!r} failed: {exc!r}\n{trace}")

    # -- nodes --------------------------------------------------------------------------------

    def add_node(self, name: str, gpus: int) -> None:
        self.nodes[name] = Node(name, gpus)
        capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", GPU: str(gpus)}
        rt = self.api.resource("", "v1", "nodes")
        body: dict[str, Any] = {
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            },
            "status": {
                "capacity": capacity,
                "allocatable": dict(capacity),
                "addresses": [
                    {"type": "InternalIP", "address": "127.0.0.1"},
                    {"type": "Hostname", "address": name},
                ],
                "conditions": [self._ready_condition(True)],
                "nodeInfo": {
                    "kubeletVersion": "v1.32.0-kubetune-sim",
                    "osImage": "simulated",
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                },
            },
        }
        try:
            self.api.create(rt, "", body, self._strict())
        except ApiError:
            self.api.remove(rt, "", name)
            self.api.create(rt, "", body, self._strict())
        self._set_node_status(name, body["status"])
        self._kick()

    @staticmethod
    def _ready_condition(ready: bool) -> dict[str, Any]:
        return {
            "type": "Ready",
            "status": "True" if ready else "Unknown",
            "reason": "KubeletReady" if ready else "NodeStatusUnknown",
            "message": "kubelet is posting ready status"
            if ready
            else "Kubelet stopped posting node status.",
            "lastTransitionTime": now(),
            "lastHeartbeatTime": now(),
        }

    def _set_node_status(self, name: str, status: dict[str, Any]) -> None:
        rt = self.api.resource("", "v1", "nodes")
        node = self.api.get(rt, "", name)
        node["status"] = status
        self.api.update(rt, "", name, node, self._strict(), subresource="status")

    async def lose_node(self, name: str) -> None:
        node = self.nodes[name]
        node.lost = True
        rt = self.api.resource("", "v1", "nodes")
        status: dict[str, Any] = self.api.get(rt, "", name).get("status") or {}
        status["conditions"] = [self._ready_condition(False)]
        self._set_node_status(name, status)
        message = f"Node {name} which was running pod {{}} is unresponsive"
        for run in [r for r in self.runs.values() if r.node == name]:
            await self._kill(run, ("NodeLost", message.format(run.name), "Error"))

    async def evict(self, namespace: str, name: str, message: str | None) -> None:
        run = self._run_of(namespace, name)
        text = message or "The node was low on resource: memory. "
        await self._kill(run, ("Evicted", text, "Error"))

    async def oom_kill(self, namespace: str, name: str) -> None:
        await self._kill(self._run_of(namespace, name), ("", "", "OOMKilled"))

    def _run_of(self, namespace: str, name: str) -> PodRun:
        for run in self.runs.values():
            if (run.namespace, run.name) == (namespace, name):
                return run
        raise KeyError(f"pod {namespace}/{name} is not running on the simulated kubelet")

    async def _kill(self, run: PodRun, why: tuple[str, str, str]) -> None:
        run.killed = why
        self._signal(run, signal.SIGKILL)
        if run.task is not None:
            await asyncio.wait([run.task], timeout=10)

    # -- the control loop ---------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if (event.group, event.plural) not in (
            ("", "pods"),
            ("", "nodes"),
            ("", "secrets"),
            ("", "configmaps"),
        ):
            return
        if event.plural == "pods" and event.type == "DELETED":
            run = self.runs.get(event.obj["metadata"]["uid"])
            if run is not None and not run.stopping:
                # Force deletion (grace 0): the object is gone, stop the processes now.
                run.stopping = True
                self._signal(run, signal.SIGKILL)
        self._kick()

    def _kick(self) -> None:
        """Reconcile soon: never inside a store write (listeners run synchronously)."""
        if self._pending_reconcile or not self._started:
            return
        self._pending_reconcile = True
        asyncio.get_running_loop().call_soon(self._reconcile)

    def _holds_process(self, pod: dict[str, Any]) -> bool:
        run = self.runs.get(pod["metadata"]["uid"])
        return run is not None and (pod.get("status") or {}).get("phase") not in TERMINAL_PHASES

    def _reconcile(self) -> None:
        self._pending_reconcile = False
        if not self._started:
            return
        pods = self.api.store.items("", "pods", None)
        for pod in pods:
            md, spec = pod["metadata"], pod.get("spec") or {}
            phase = (pod.get("status") or {}).get("phase")
            run = self.runs.get(md["uid"])
            if md.get("deletionTimestamp"):
                if run is not None and phase not in TERMINAL_PHASES:
                    if not run.stopping:
                        run.stopping = True
                        self._spawn(
                            self._terminate(run, int(md.get("deletionGracePeriodSeconds", 30)))
                        )
                else:
                    self.api.remove(self.pods, md["namespace"], md["name"])
                continue
            if run is not None or phase in TERMINAL_PHASES:
                continue
            node = spec.get("nodeName")
            if not node and spec.get("schedulingGates"):
                # The scheduler leaves a gated pod alone until every gate is removed.
                self._set_condition(
                    md["namespace"],
                    md["name"],
                    "PodScheduled",
                    "False",
                    "SchedulingGated",
                    "Scheduling is blocked due to non-empty scheduling gates",
                )
            elif not node:
                self._schedule(pod, pods)
            elif node in self.nodes and not self.nodes[node].lost:
                self._start(pod)
        live = {p["metadata"]["uid"] for p in pods}
        for uid in [u for u in self.runs if u not in live]:
            run = self.runs[uid]
            if run.task is None or run.task.done():
                del self.runs[uid]

    def _schedule(self, pod: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        nodes_rt = self.api.resource("", "v1", "nodes")
        for node in self.nodes.values():
            stored = self.api.get(nodes_rt, "", node.name)
            node.labels = stored["metadata"].get("labels") or {}
            node.taints = list((stored.get("spec") or {}).get("taints") or [])
        chosen, message = place(pod, pods, list(self.nodes.values()))
        md = pod["metadata"]
        if chosen is None:
            if self._set_condition(
                md["namespace"], md["name"], "PodScheduled", "False", "Unschedulable", message
            ):
                self._event(pod, "Warning", "FailedScheduling", message, "default-scheduler")
            return
        bound = self.api.get(self.pods, md["namespace"], md["name"])
        bound["spec"]["nodeName"] = chosen
        self.api.update(self.pods, md["namespace"], md["name"], bound, self._strict())
        self._set_condition(md["namespace"], md["name"], "PodScheduled", "True")
        self._event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {md['namespace']}/{md['name']} to {chosen}",
            "default-scheduler",
        )

    def _event(
        self, pod: dict[str, Any], kind: str, reason: str, message: str, component: str
    ) -> None:
        """A core v1 Event about the pod, as the scheduler and kubelet post them."""
        md = pod["metadata"]
        stamp = now()
        # Like the real kubelet, an event that cannot be posted (e.g. the namespace is
        # terminating) is dropped.
        try:
            self._post_event(md, stamp, kind, reason, message, component)
        except ApiError as err:
            if err.code == 400:  # a malformed event is a bug of the simulation
                raise

    def _post_event(
        self, md: dict[str, Any], stamp: str, kind: str, reason: str, message: str, component: str
    ) -> None:
        self.api.create(
            self.api.resource("", "v1", "events"),
            md["namespace"],
            {
                "metadata": {"generateName": f"{md['name']}."},
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": md["namespace"],
                    "name": md["name"],
                    "uid": md["uid"],
                    "apiVersion": "v1",
                },
                "type": kind,
                "reason": reason,
                "message": message,
                "source": {"component": component},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
                "reportingComponent": component,
            },
            self._strict(),
        )

    # -- status writes ------------------------------------------------------------------------

    def _patch_status(
        self,
        namespace: str,
        name: str,
        change: dict[str, Any],
        conditions: tuple[Condition, ...] = (),
    ) -> bool:
        """One status write: fields of `change` and conditions (type, status, reason,
        message); False when nothing changed."""
        try:
            pod = self.api.get(self.pods, namespace, name)
        except ApiError:
            return False  # deleted meanwhile
        status = copy.deepcopy(pod.get("status") or {})
        status.update(change)
        current = merge_conditions(status.get("conditions") or [], conditions, now())
        if current:
            status["conditions"] = current
        if status == pod.get("status"):
            return False
        pod["status"] = status
        self.api.update(self.pods, namespace, name, pod, self._strict(), subresource="status")
        return True

    def _set_condition(
        self,
        namespace: str,
        name: str,
        kind: str,
        value: str,
        reason: str = "",
        message: str = "",
    ) -> bool:
        """Set one pod condition; False when it already was so (nothing written)."""
        return self._patch_status(namespace, name, {}, ((kind, value, reason, message),))

    def _container_statuses(
        self, pod: dict[str, Any], run: PodRun, waiting: tuple[str, str] | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for spec in pod["spec"]["containers"]:
            c = run.containers[spec["name"]]
            alive = c.process is not None and c.process.returncode is None
            out.append(
                container_status(
                    spec,
                    pod_uid=run.uid,
                    restarts=c.restarts,
                    terminated=c.terminated,
                    running_since=c.started if alive else None,
                    waiting=waiting,
                )
            )
        return out

    # -- running pods -------------------------------------------------------------------------

    def _allocate_ip(self) -> str:
        ip = str(ipaddress.IPv4Address(self._next_ip))
        self._next_ip += 1
        if ip.endswith(".255") or ip.endswith(".0"):
            return self._allocate_ip()
        return ip

    def _start(self, pod: dict[str, Any]) -> None:
        md = pod["metadata"]
        workdir = self.root / md["namespace"] / f"{md['name']}-{md['uid'][:8]}"
        workdir.mkdir(parents=True, exist_ok=True)
        run = PodRun(
            md["namespace"],
            md["name"],
            md["uid"],
            self._allocate_ip(),
            pod["spec"]["nodeName"],
            workdir,
        )
        for spec in pod["spec"]["containers"]:
            run.containers[spec["name"]] = Container(
                spec["name"],
                workdir / f"{spec['name']}.log",
                workdir / f"{spec['name']}.termination-log",
            )
        self.runs[md["uid"]] = run
        self._patch_status(
            md["namespace"],
            md["name"],
            {
                "hostIP": "127.0.0.1",
                "hostIPs": [{"ip": "127.0.0.1"}],
                "podIP": run.ip,
                "podIPs": [{"ip": run.ip}],
                "startTime": now(),
                "containerStatuses": self._container_statuses(pod, run),
            },
            (("Initialized", "True", "", ""),),
        )
        run.task = asyncio.get_running_loop().create_task(self._run(run))
        run.task.add_done_callback(self._record_failure)

    async def _run(self, run: PodRun) -> None:
        try:
            await self._run_containers(run)
        except asyncio.CancelledError:
            self._signal(run, signal.SIGKILL)
            raise
        finally:
            self._kick()

    def _pod(self, run: PodRun) -> dict[str, Any] | None:
        pod = self.api.store.get(("", "pods", run.namespace, run.name))
        if pod is None or pod["metadata"]["uid"] != run.uid:
            return None
        return pod

    async def _run_containers(self, run: PodRun) -> None:
        while True:  # wait for Secrets/ConfigMaps the environment needs
            pod = self._pod(run)
            if pod is None or run.stopping or run.killed:
                return
            try:
                commands = {
                    spec["name"]: self._prepare(pod, run, spec)
                    for spec in pod["spec"]["containers"]
                }
                break
            except Unresolved:
                await asyncio.sleep(0.2)
                continue
            except ConfigError as err:
                self._patch_status(
                    run.namespace,
                    run.name,
                    {
                        "containerStatuses": self._container_statuses(
                            pod, run, ("CreateContainerConfigError", str(err))
                        )
                    },
                )
                await asyncio.sleep(0.5)
        waiters = {name: self._spawn_container(run, name, *cmd) for name, cmd in commands.items()}
        oom_after = (pod["metadata"].get("annotations") or {}).get(OOM_ANNOTATION)
        if oom_after is not None:
            self._spawn(self._oom_later(run, float(oom_after)))
        deadline = pod["spec"].get("activeDeadlineSeconds")
        if deadline is not None:
            grace = int(pod["spec"].get("terminationGracePeriodSeconds", 30))
            self._spawn(self._deadline_later(run, float(deadline), grace))
        await asyncio.gather(*waiters.values())
        self._report_finished(run)

    def _prepare(
        self, pod: dict[str, Any], run: PodRun, spec: dict[str, Any]
    ) -> tuple[list[str], dict[str, str]]:
        ns = run.namespace

        def lookup(plural: str, name: str) -> dict[str, Any] | None:
            return self.api.store.get(("", plural, ns, name))

        base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(run.workdir),
            "TMPDIR": str(run.workdir),
            "HOSTNAME": pod["spec"].get("hostname") or run.name,
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            # A checkout other than the installed one (a git worktree) stands in for the image.
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.api_port),
            **self.extra_env,
        }
        message_file = run.containers[spec["name"]].message_file
        return process_launch(
            copy.deepcopy(pod),
            spec,
            run.workdir,
            message_file,
            base,
            lookup,
            lambda value: self._cluster_dns(ns, value),
        )

    def _cluster_dns(self, namespace: str, value: str) -> str:
        """A pod's DNS name under a headless Service (`<hostname>.<subdomain>`, optionally
        `.<namespace>[.svc[.cluster.local]]`) -> the pod's address; anything else as is.
        Unresolved while the Service's pod of that hostname has no address yet.

        `<name>:<port>` -> `<address>:<host port>`: on a cluster each pod has its own ports;
        here all pods share the host's, so a port a process listens on on every address
        (torchrun's store) would collide between pods. Each (pod, port) named this way gets
        its own free host port, the same for every pod that names it."""
        name, port = value, None
        host_part, sep, digits = value.rpartition(":")
        if sep and digits.isdigit() and host_part:
            name, port = host_part, int(digits)
        found = self._pod_by_dns(namespace, name)
        if found is None:
            return value
        uid, address = found
        if port is None:
            return address
        key = (uid, port)
        if key not in self._host_ports:
            self._host_ports[key] = _free_port()
        return f"{address}:{self._host_ports[key]}"

    def _pod_by_dns(self, namespace: str, name: str) -> tuple[str, str] | None:
        """(uid, address) of the pod a headless Service's DNS name names, None when the name
        is no such name; Unresolved while that pod has no address yet."""
        parts = name.split(".")
        if len(parts) < 2 or not all(parts):
            return None
        host, subdomain, rest = parts[0], parts[1], parts[2:]
        if rest and rest[1:] not in ([], ["svc"], ["svc", "cluster", "local"]):
            return None
        namespace = rest[0] if rest else namespace
        service = self.api.store.get(("", "services", namespace, subdomain))
        spec = (service or {}).get("spec") or {}
        if service is None or spec.get("clusterIP") != "None":
            return None
        selector = ",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items())
        selected = label_matcher(selector)
        for pod in self.api.store.items("", "pods", namespace):
            pod_spec, status = pod["spec"], pod.get("status") or {}
            if (pod_spec.get("hostname"), pod_spec.get("subdomain")) != (host, subdomain):
                continue
            if not selector or not selected(pod["metadata"].get("labels") or {}):
                continue
            if status.get("podIP") and status.get("phase") not in TERMINAL_PHASES:
                return str(pod["metadata"]["uid"]), str(status["podIP"])
        raise Unresolved(name)

    async def _spawn_container(
        self, run: PodRun, name: str, argv: list[str], env: dict[str, str]
    ) -> None:
        c = run.containers[name]
        pod = self._pod(run)
        policy = (pod or {}).get("spec", {}).get("restartPolicy", "Always")
        while True:
            with open(c.log, "ab") as log:
                try:
                    c.process = await asyncio.create_subprocess_exec(
                        *argv,
                        cwd=run.workdir,
                        env=env,
                        stdout=log,
                        stderr=log,
                        stdin=asyncio.subprocess.DEVNULL,
                        start_new_session=True,
                        preexec_fn=die_with_parent,
                    )
                except OSError as err:
                    c.terminated = {
                        "exitCode": 128,
                        "reason": "StartError",
                        "message": str(err),
                        "startedAt": now(),
                        "finishedAt": now(),
                    }
                    return
            started = c.started = now()
            self._report_running(run)
            current = self._pod(run)
            if current is not None:
                self._event(current, "Normal", "Started", f"Started container {name}", "kubelet")
            code = await c.process.wait()
            c.terminated = self._termination(run, c, code, started)
            restart = policy == "Always" or (policy == "OnFailure" and code != 0)
            if not restart or run.stopping or run.killed:
                if not (run.stopping or run.killed) and any(
                    other.process is not None and other.process.returncode is None
                    for other in run.containers.values()
                ):
                    # As a real kubelet does: the pod keeps running with this container
                    # shown terminated (e.g. the main container done, a sidecar still up).
                    self._report_running(run, ready=False)
                return
            c.restarts += 1
            self._report_running(
                run, waiting=("CrashLoopBackOff", "back-off restarting failed container")
            )
            await asyncio.sleep(min(self.restart_backoff * 2 ** (c.restarts - 1), 5.0))
            if run.stopping or run.killed:
                return
            c.terminated = None

    def _termination(self, run: PodRun, c: Container, code: int, started: str) -> dict[str, Any]:
        pod = self._pod(run) or {}
        spec: dict[str, Any] = next(
            (s for s in pod.get("spec", {}).get("containers", []) if s["name"] == c.name), {}
        )
        policy = spec.get("terminationMessagePolicy", "File")
        return terminated_state(
            code,
            oom_killed=run.killed is not None and run.killed[2] == "OOMKilled",
            started=started,
            finished=now(),
            container_id=f"sim://{run.uid}/{c.name}",
            message=termination_message(c.message_file, c.log, exit_code_of(code), policy),
        )

    def _report_running(
        self, run: PodRun, waiting: tuple[str, str] | None = None, *, ready: bool = True
    ) -> None:
        pod = self._pod(run)
        if pod is None:
            return
        ready_text = "True" if waiting is None and ready else "False"
        self._patch_status(
            run.namespace,
            run.name,
            {
                "phase": "Running",
                "containerStatuses": self._container_statuses(pod, run, waiting),
            },
            (("ContainersReady", ready_text, "", ""), ("Ready", ready_text, "", "")),
        )

    def _report_finished(self, run: PodRun) -> None:
        pod = self._pod(run)
        if pod is None:
            return
        codes = [c.terminated["exitCode"] for c in run.containers.values() if c.terminated]
        phase = "Succeeded" if codes and all(code == 0 for code in codes) else "Failed"
        change: dict[str, Any] = {
            "phase": phase,
            "containerStatuses": self._container_statuses(pod, run),
        }
        if run.killed and run.killed[0]:
            change["phase"] = "Failed"
            change["reason"], change["message"] = run.killed[0], run.killed[1]
        reason = "PodCompleted" if change["phase"] == "Succeeded" else "PodFailed"
        self._patch_status(
            run.namespace,
            run.name,
            change,
            (("ContainersReady", "False", reason, ""), ("Ready", "False", reason, "")),
        )

    async def _oom_later(self, run: PodRun, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if not run.stopping and run.task is not None and not run.task.done():
            await self._kill(run, ("", "", "OOMKilled"))

    async def _deadline_later(self, run: PodRun, seconds: float, grace: int) -> None:
        """activeDeadlineSeconds: the pod fails with DeadlineExceeded; containers get
        SIGTERM and, after the grace period, SIGKILL."""
        await asyncio.sleep(seconds)
        if run.stopping or run.task is None or run.task.done():
            return
        run.killed = (
            "DeadlineExceeded",
            "Pod was active on the node longer than the specified deadline",
            "Error",
        )
        self._signal(run, signal.SIGTERM)
        _, pending = await asyncio.wait([run.task], timeout=grace)
        if pending:
            self._signal(run, signal.SIGKILL)

    def _signal(self, run: PodRun, sig: int) -> None:
        for c in run.containers.values():
            if c.process is not None and c.process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(c.process.pid, sig)

    async def _terminate(self, run: PodRun, grace: int) -> None:
        """Graceful deletion: SIGTERM, wait the grace period, SIGKILL, then drop the pod."""
        pod = self._pod(run)
        if pod is not None:
            for name in run.containers:
                self._event(pod, "Normal", "Killing", f"Stopping container {name}", "kubelet")
        self._signal(run, signal.SIGTERM)
        if run.task is not None:
            _, pending = await asyncio.wait([run.task], timeout=grace)
            if pending:
                self._signal(run, signal.SIGKILL)
                await asyncio.wait([run.task], timeout=10)
        self.api.remove(self.pods, run.namespace, run.name)

    # -- logs ---------------------------------------------------------------------------------

    def _container_for(self, namespace: str, name: str, container: str | None) -> Container:
        pod = self.api.get(self.pods, namespace, name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        if container is None:
            if len(names) != 1:
                raise ApiError(
                    400,
                    f"a container name must be specified for pod {name}, "
                    f"choose one of: [{' '.join(names)}]",
                )
            container = names[0]
        if container not in names:
            raise ApiError(400, f"container {container} is not valid for pod {name}")
        run = self.runs.get(pod["metadata"]["uid"])
        if run is None or not run.containers[container].log.exists():
            raise ApiError(
                400,
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating',
            )
        return run.containers[container]

    def read_logs(self, namespace: str, name: str, container: str | None = None) -> str:
        c = self._container_for(namespace, name, container)
        return c.log.read_bytes().decode(errors="replace")

    def logs(
        self, namespace: str, name: str, container: str | None, query: dict[str, str]
    ) -> AsyncIterator[bytes]:
        """The `log` subresource: tailLines, limitBytes and follow are honoured."""
        c = self._container_for(namespace, name, container)

        def running() -> bool:
            return c.process is not None and c.process.returncode is None

        return stream_log(c.log, query, running)


def _free_port() -> int:
    """A port no process listens on now, on any address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])
