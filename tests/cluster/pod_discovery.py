"""Prometheus HTTP service discovery that reproduces Kubernetes SD (role: pod).

Debian's `prometheus` package is built without Kubernetes service discovery (its
NEWS.Debian: "Kubernetes support has been completely removed"), so `kubernetes_sd_configs`
is rejected by the real binary we can install. This bridge lists pods from the simulated
API server with the real kubernetes Python client and answers Prometheus's
`http_sd_configs` with the very targets and `__meta_kubernetes_*` labels that Kubernetes SD
would produce, so production relabelling rules run unchanged against it.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from .cluster import Cluster

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def sanitize(name: str) -> str:
    """Prometheus's label-name sanitizing (strutil.SanitizeLabelName)."""
    return _INVALID.sub("_", name)


def _pod_labels(pod: dict[str, Any]) -> dict[str, str]:
    md, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    labels = {
        "__meta_kubernetes_namespace": md.get("namespace", ""),
        "__meta_kubernetes_pod_name": md["name"],
        "__meta_kubernetes_pod_ip": status.get("podIP", ""),
        "__meta_kubernetes_pod_ready": _ready(status),
        "__meta_kubernetes_pod_phase": status.get("phase", ""),
        "__meta_kubernetes_pod_node_name": spec.get("nodeName", ""),
        "__meta_kubernetes_pod_host_ip": status.get("hostIP", ""),
        "__meta_kubernetes_pod_uid": md.get("uid", ""),
    }
    for ref in md.get("ownerReferences") or []:
        if ref.get("controller"):
            labels["__meta_kubernetes_pod_controller_kind"] = ref.get("kind", "")
            labels["__meta_kubernetes_pod_controller_name"] = ref.get("name", "")
    for kind in ("label", "annotation"):
        source = md.get(f"{kind}s") or {}
        for key, value in source.items():
            labels[f"__meta_kubernetes_pod_{kind}_{sanitize(key)}"] = str(value)
            labels[f"__meta_kubernetes_pod_{kind}present_{sanitize(key)}"] = "true"
    return labels


def _ready(status: dict[str, Any]) -> str:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return "true" if cond.get("status") == "True" else "false"
    return "unknown"


def target_groups(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One group per container port (or per container without ports), as Kubernetes SD does;
    pods without an IP yet are skipped, as Kubernetes SD skips them."""
    groups = []
    for pod in pods:
        ip = (pod.get("status") or {}).get("podIP")
        if not ip:
            continue
        common = _pod_labels(pod)
        spec = pod.get("spec") or {}
        for init, containers in (
            (False, spec.get("containers") or []),
            (True, spec.get("initContainers") or []),
        ):
            for c in containers:
                base = {
                    **common,
                    "__meta_kubernetes_pod_container_name": c["name"],
                    "__meta_kubernetes_pod_container_image": c.get("image", ""),
                    "__meta_kubernetes_pod_container_init": "true" if init else "false",
                }
                ports = c.get("ports") or []
                if not ports:
                    groups.append({"targets": [ip], "labels": base})
                for port in ports:
                    number = port["containerPort"]
                    groups.append(
                        {
                            "targets": [f"{ip}:{number}"],
                            "labels": {
                                **base,
                                "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                                "__meta_kubernetes_pod_container_port_number": str(number),
                                "__meta_kubernetes_pod_container_port_protocol": port.get(
                                    "protocol", "TCP"
                                ),
                            },
                        }
                    )
    return groups


class PodDiscovery:
    """An HTTP SD endpoint (`.url`) on the cluster's event loop."""

    def __init__(self, cluster: Cluster, namespaces: list[str] | None = None) -> None:
        self.cluster = cluster
        self.namespaces = namespaces
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._client: Any = None
        self.refreshes = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/targets"

    def _list_pods(self) -> list[dict[str, Any]]:
        from kubernetes import client

        if self._client is None:
            self._client = client.CoreV1Api(self.cluster.api_client())
        responses = (
            [self._client.list_namespaced_pod(ns, _preload_content=False) for ns in self.namespaces]
            if self.namespaces
            else [self._client.list_pod_for_all_namespaces(_preload_content=False)]
        )
        pods: list[dict[str, Any]] = []
        for response in responses:
            pods += json.loads(response.data)["items"]
        return pods

    async def _targets(self, request: web.Request) -> web.Response:
        self.refreshes += 1
        pods = await asyncio.get_running_loop().run_in_executor(None, self._list_pods)
        return web.json_response(target_groups(pods))

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/targets", self._targets)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> PodDiscovery:
        self.cluster.run(self._start())
        return self

    def stop(self) -> None:
        self.cluster.run(self._stop())
