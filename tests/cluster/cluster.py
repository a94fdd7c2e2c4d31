"""`Cluster`: the handle tests use. Starts the simulated API server (and kubelet) on a
background thread with its own event loop, writes a kubeconfig, and offers helpers.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from .api import Api
from .custom_kind import TrainingRunController
from .errors import ApiError
from .faults import Faults
from .jobs import JobController
from .kubelet import Kubelet
from .kueue import KueueController
from .lifecycle import DeleteOptions
from .server import ApiServer
from .store import Store
from .training import TrainingControllers
from .trainjob import TrainJobController

T = TypeVar("T")


class Cluster:
    """A running test cluster. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        workdir: Path,
        *,
        tls: bool = False,
        history_limit: int = 2000,
        node_gpus: int = 8,
        kubelet: bool = True,
        pod_env: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.faults = Faults()
        self.api = Api(Store(history_limit=history_limit))
        self.server = ApiServer(self.api, self.faults)
        self.faults._drop = lambda: self.call(self.server.drop_watches)
        self.kubelet = Kubelet(self.api, self.workdir / "pods") if kubelet else None
        self.jobs = JobController(self.api)
        # PyTorchJob and JobSet: served once a test applies their CRDs (testdata/).
        self.training = TrainingControllers(self.api)
        # Kubeflow Trainer TrainJob -> JobSet: once a test applies testdata/trainjobs-crd.yaml.
        self.trainjobs = TrainJobController(self.api)
        # example.dev TrainingRun, a kind kubetune does not know: once its CRD is applied.
        self.custom = TrainingRunController(self.api)
        # Off until a test gives it queues: kueue.configure({"queue": gpus}).
        self.kueue = KueueController(self.api)
        if self.kubelet is not None:
            self.server.logs = self.kubelet.logs
            # Extra environment for every container process (e.g. HF_HUB_OFFLINE=1).
            self.kubelet.extra_env.update(pod_env or {})
        self._node_gpus = node_gpus
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="test-cluster", daemon=True
        )
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.ca_file: Path | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Cluster:
        self._thread.start()
        self.run(self._start())
        self.server.server_address = f"127.0.0.1:{self.port}"
        self._write_kubeconfig()
        if self.kubelet is not None:
            self.add_node("node-1", gpus=self._node_gpus)
        return self

    async def _start(self) -> None:
        context = self._tls_context() if self.tls else None
        # handler_cancellation: a client hanging up ends its watch handler at once.
        self._runner = web.AppRunner(
            self.server.app, handle_signals=False, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]
        if self.kubelet is not None:
            self.kubelet.api_port = self.port
            self.kubelet.start()
        self.jobs.start()
        self.training.start()
        self.trainjobs.start()
        self.custom.start()
        self.kueue.start()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self.run(self._stop(), timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _stop(self) -> None:
        if self.kubelet is not None:
            await self.kubelet.stop()
        self.jobs.stop()
        self.training.stop()
        self.trainjobs.stop()
        self.custom.stop()
        self.kueue.stop()
        self.server.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()

    def _tls_context(self) -> ssl.SSLContext:
        cert, key = self.workdir / "apiserver.crt", self.workdir / "apiserver.key"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-subj",
                "/CN=kubetune-test-cluster",
                "-addext",
                "subjectAltName=IP:127.0.0.1,DNS:localhost",
            ],
            check=True,
            capture_output=True,
        )
        self.ca_file = cert
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    # -- thread bridging ----------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run a coroutine on the cluster's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call a function on the cluster's loop thread (where all state lives)."""

        async def wrapper() -> T:
            return fn(*args, **kwargs)

        return self.run(wrapper())

    # -- client configuration -----------------------------------------------------------------

    @property
    def server_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    def _write_kubeconfig(self) -> None:
        cluster: dict[str, Any] = {"server": self.server_url}
        if self.ca_file is not None:
            cluster["certificate-authority-data"] = base64.b64encode(
                self.ca_file.read_bytes()
            ).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubetune-test", "cluster": cluster}],
            "users": [{"name": "tester", "user": {"token": "kubetune-test-token"}}],
            "contexts": [
                {
                    "name": "kubetune-test",
                    "context": {
                        "cluster": "kubetune-test",
                        "user": "tester",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": "kubetune-test",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))

    def env(self) -> dict[str, str]:
        """Environment for a client process: KUBECONFIG and a private kubectl cache."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.workdir / "kubectl-cache")
        env["HOME"] = str(self.workdir)
        return env

    def kubectl(
        self, *args: str, input: str | None = None, timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster; output is text."""
        return subprocess.run(
            ["kubectl", *args],
            input=input,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            check=check,
        )

    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient configured for this cluster."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(self.kubeconfig), client_configuration=configuration
        )
        return client.ApiClient(configuration)

    def apply_crd(self, path: str | Path) -> None:
        """`kubectl apply -f` a CRD file and wait until its resources are served."""
        result = self.kubectl("apply", "-f", str(path))
        if result.returncode != 0:
            raise RuntimeError(f"kubectl apply -f {path} failed: {result.stderr}")
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                group, plural = doc["spec"]["group"], doc["spec"]["names"]["plural"]
                version = doc["spec"]["versions"][0]["name"]
                self._wait_served(group, version, plural)

    def _wait_served(self, group: str, version: str, plural: str) -> None:
        def served() -> bool:
            return self.call(self.api.registry.get, group, version, plural) is not None

        self.wait_for(served, message=f"CRD {plural}.{group} served")

    # -- direct state access (no HTTP) --------------------------------------------------------

    def get(
        self,
        plural: str,
        name: str,
        namespace: str = "default",
        group: str = "",
        version: str | None = None,
    ) -> dict[str, Any] | None:
        """An object as stored now, or None."""

        def read() -> dict[str, Any] | None:
            rt = self._resource(group, plural, version)
            try:
                return self.api.get(rt, namespace if rt.namespaced else "", name)
            except ApiError:
                return None

        return self.call(read)

    def list_objects(
        self,
        plural: str,
        namespace: str | None = None,
        group: str = "",
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            rt = self._resource(group, plural, None)
            items: list[dict[str, Any]] = self.api.list_objects(rt, namespace, label_selector)[
                "items"
            ]
            return items

        return self.call(read)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an object from a manifest (apiVersion/kind pick the resource)."""

        def write() -> dict[str, Any]:
            rt = self.api.registry.by_kind(body["apiVersion"], body["kind"])
            if rt is None:
                raise ApiError(404, f"no resource for {body['apiVersion']} {body['kind']}")
            return self.api.create(rt, body["metadata"].get("namespace", "default"), body)

        return self.call(write)

    def delete(
        self,
        plural: str,
        name: str,
        namespace: str = "default",
        group: str = "",
        grace_period: int | None = None,
        propagation: str | None = None,
    ) -> None:
        def write() -> None:
            rt = self._resource(group, plural, None)
            options = DeleteOptions(grace_period=grace_period, propagation=propagation)
            self.api.delete(rt, namespace, name, options)

        self.call(write)

    def _resource(self, group: str, plural: str, version: str | None) -> Any:
        for rt in self.api.registry.all():
            if rt.group == group and rt.plural == plural and version in (None, rt.version):
                return rt
        raise KeyError(f"resource {plural}.{group} is not served")

    def compact(self) -> None:
        """Forget the watch history: watches resuming from older versions get 410 Gone."""
        self.call(self.api.store.compact)

    def requests(self) -> list[tuple[str, str, str, str]]:
        """Recent requests, oldest first: (method, path?query, Accept, User-Agent)."""
        return self.call(lambda: list(self.server.requests))

    @property
    def internal_errors(self) -> list[str]:
        """Unexpected exceptions inside the simulation (API server, kubelet, Job controller)."""
        kubelet_errors = self.kubelet.errors if self.kubelet is not None else []
        return (
            list(self.server.internal_errors)
            + list(kubelet_errors)
            + list(self.jobs.errors)
            + list(self.training.errors)
            + list(self.trainjobs.errors)
            + list(self.kueue.errors)
        )

    # -- nodes and pods (the simulated kubelet) -----------------------------------------------

    def _kubelet(self) -> Kubelet:
        if self.kubelet is None:
            raise RuntimeError("this cluster runs without a kubelet")
        return self.kubelet

    def add_node(self, name: str, gpus: int = 0) -> None:
        self.call(self._kubelet().add_node, name, gpus)

    def lose_node(self, name: str) -> None:
        """The node stops responding: its pods fail with reason NodeLost."""
        self.run(self._kubelet().lose_node(name))

    def set_kueue_quotas(self, quotas: dict[str, int]) -> None:
        """Kueue stand-in (kueue.py): local queue name -> GPU quota; `{}` turns it off."""
        self.call(self.kueue.configure, quotas)

    def kueue_evict(self, plural: str, namespace: str, name: str) -> None:
        """The Kueue stand-in evicts an admitted workload (plural: jobs, jobsets, pytorchjobs,
        trainjobs) as on preemption: suspended again and requeued (kueue.py)."""
        self.call(self.kueue.evict, plural, namespace, name)

    def evict_pod(self, namespace: str, name: str, message: str | None = None) -> None:
        """The kubelet evicts the pod (node pressure): it fails with reason Evicted."""
        self.run(self._kubelet().evict(namespace, name, message))

    def oom_kill(self, namespace: str, name: str) -> None:
        """The pod's containers are killed for memory: exit code 137, reason OOMKilled."""
        self.run(self._kubelet().oom_kill(namespace, name))

    def pod_logs(self, namespace: str, name: str, container: str | None = None) -> str:
        """stdout and stderr of the container so far ("" before it starts)."""

        def read() -> str:
            try:
                return self._kubelet().read_logs(namespace, name, container)
            except ApiError as err:
                if err.code == 400 and "waiting to start" in err.message:
                    return ""
                raise

        return self.call(read)

    def pod_ip(self, namespace: str, name: str) -> str | None:
        pod = self.get("pods", name, namespace)
        return None if pod is None else (pod.get("status") or {}).get("podIP")

    # -- waiting --------------------------------------------------------------------------------

    def wait_for(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 30,
        interval: float = 0.05,
        message: str = "condition",
    ) -> T:
        """Poll until predicate() is truthy; return its value. Raise TimeoutError naming it."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
            time.sleep(interval)

    def wait_for_pod_phase(
        self, namespace: str, name: str, *phases: str, timeout: float = 30
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            pod = self.get("pods", name, namespace)
            if pod and (pod.get("status") or {}).get("phase") in phases:
                return pod
            return None

        return self.wait_for(reached, timeout, message=f"pod {namespace}/{name} in {phases}")

    def wait_for_deletion(
        self,
        plural: str,
        name: str,
        namespace: str = "default",
        group: str = "",
        timeout: float = 30,
    ) -> None:
        self.wait_for(
            lambda: self.get(plural, name, namespace, group) is None,
            timeout,
            message=f"{plural} {namespace}/{name} deleted",
        )
