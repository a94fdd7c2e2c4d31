"""A small async client for the few Kubernetes API calls the operator makes.

Kopf watches; this creates and deletes trial pods and patches sweep status. It reuses
the kubernetes package's config loaders (kubeconfig or in-cluster service account,
with token refresh) and speaks REST through httpx, so no call blocks the event loop.
"""

import json as jsonlib
import os
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
from kubernetes import config as kube_config
from kubernetes.client import Configuration

from kubetune import API_GROUP, API_VERSION, PLURAL

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """The API server answered with an error status (or could not be reached: status 0)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"HTTP {status} {reason}: {message}")

    @property
    def transient(self) -> bool:
        """Worth retrying as is: unreachable, throttled, a server error, or a stale write."""
        return self.status in (0, 409, 429) or self.status >= 500


def load_configuration(kubeconfig: str | None = None) -> Configuration:
    """In-cluster service account inside a pod, else the kubeconfig (KUBECONFIG or ~/.kube)."""
    cfg = Configuration()
    # Read KUBECONFIG now: the kubernetes package reads it once, when first imported.
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not path:
        kube_config.load_incluster_config(client_configuration=cfg)
    else:
        kube_config.load_kube_config(config_file=path, client_configuration=cfg)
    return cfg


def bearer_token(cfg: Configuration) -> str | None:
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix(
        "authorization"
    )
    return header or None


class KubeClient:
    def __init__(self, cfg: Configuration, timeout: float = 15.0) -> None:
        self._cfg = cfg
        verify: ssl.SSLContext | bool = False
        if cfg.verify_ssl:
            verify = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
            if cfg.cert_file:
                verify.load_cert_chain(cfg.cert_file, cfg.key_file)
            if not cfg.assert_hostname and cfg.assert_hostname is not None:
                verify.check_hostname = False
        self._http = httpx.AsyncClient(
            base_url=cfg.host,
            verify=verify,
            timeout=timeout,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        )
        # (group, version, kind) -> plural, found by discovery (resource_plural).
        self._plurals: dict[tuple[str, str, str], str] = {}

    @classmethod
    def from_environment(cls, kubeconfig: str | None = None) -> "KubeClient":
        return cls(load_configuration(kubeconfig))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _create(self, path: str, obj: dict[str, Any]) -> dict[str, Any] | None:
        """POST obj to path: the created object, or None when one of that name exists."""
        try:
            return await self._request("POST", path, json=obj)
        except ApiError as error:
            if error.status == 409 and error.reason == "AlreadyExists":
                return None
            raise

    async def _delete(
        self,
        path: str,
        uid: str | None,
        *,
        grace_seconds: int | None = None,
        foreground: bool = False,
    ) -> bool:
        """DELETE path; False when it was already gone, or (a uid precondition's 409) when
        the object of that name is a newer one, which is left alone."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            options["preconditions"] = {"uid": uid}
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        if foreground:
            options["propagationPolicy"] = "Foreground"
        try:
            await self._request("DELETE", path, json=options)
        except ApiError as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    # Pods.
    async def create_pod(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """The created pod, or None when a pod of that name already exists."""
        return await self._create(f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods", pod)

    async def delete_pod(
        self, namespace: str, name: str, uid: str | None = None, grace_seconds: int | None = None
    ) -> bool:
        """False when it was already gone; uid guards against deleting a newer pod of that name."""
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
        return await self._delete(path, uid, grace_seconds=grace_seconds)

    async def create_service(self, service: dict[str, Any]) -> dict[str, Any] | None:
        """The created Service, or None when a Service of that name already exists."""
        namespace = service["metadata"]["namespace"]
        return await self._create(f"/api/v1/namespaces/{namespace}/services", service)

    # Trial Jobs (spec.workload).
    async def create_job(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """The created Job, or None when a Job of that name already exists."""
        namespace = job["metadata"]["namespace"]
        return await self._create(f"/apis/batch/v1/namespaces/{namespace}/jobs", job)

    async def delete_job(self, namespace: str, name: str, uid: str | None = None) -> bool:
        """Delete a trial Job and, first, its pods (foreground): False when already gone.

        Without a propagation policy batch/v1 Jobs orphan their pods, which would keep
        running the trial's GPUs after kubetune stopped it.
        """
        path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}"
        return await self._delete(path, uid, foreground=True)

    # Trial workloads of other kinds (JobSet, PyTorchJob, a sweep's custom kind): custom
    # resources.
    async def resource_plural(self, group: str, version: str, kind: str) -> str | None:
        """The resource name (plural) the API server serves `kind` of group/version as, by
        discovery; None when it serves no such kind. Cached: a CRD's names never change."""
        key = (group, version, kind)
        if key not in self._plurals:
            try:
                answer = await self._request("GET", f"/apis/{group}/{version}")
            except ApiError as error:
                if error.status == 404:
                    return None
                raise
            for resource in answer.get("resources") or []:
                name = str(resource.get("name") or "")
                if resource.get("kind") == kind and "/" not in name:  # not a subresource
                    self._plurals[key] = name
                    break
            else:
                return None
        return self._plurals[key]

    async def create_object(
        self, group: str, version: str, plural: str, obj: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The created object, or None when one of that name already exists."""
        namespace = obj["metadata"]["namespace"]
        return await self._create(f"/apis/{group}/{version}/namespaces/{namespace}/{plural}", obj)

    async def get_object(
        self, group: str, version: str, plural: str, namespace: str, name: str
    ) -> dict[str, Any] | None:
        try:
            return await self._request(
                "GET", f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"
            )
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list_objects(
        self, group: str, version: str, plural: str, namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        """[] when the cluster does not serve the kind (its CRD is not installed)."""
        try:
            answer = await self._request(
                "GET",
                f"/apis/{group}/{version}/namespaces/{namespace}/{plural}",
                params={"labelSelector": selector},
            )
        except ApiError as error:
            if error.status == 404:
                return []
            raise
        items: list[dict[str, Any]] = answer.get("items") or []
        return items

    async def delete_object(
        self, group: str, version: str, plural: str, namespace: str, name: str, uid: str
    ) -> bool:
        """Delete a trial workload, its pods first (foreground): False when already gone."""
        path = f"/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"
        return await self._delete(path, uid, foreground=True)

    async def list_jobs(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        answer = await self._request(
            "GET", f"/apis/batch/v1/namespaces/{namespace}/jobs", params={"labelSelector": selector}
        )
        items: list[dict[str, Any]] = answer.get("items") or []
        return items

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        answer = await self._request(
            "GET", f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": selector}
        )
        items: list[dict[str, Any]] = answer.get("items") or []
        return items

    async def stream_pod_log(
        self, namespace: str, name: str, container: str | None = None
    ) -> AsyncIterator[bytes]:
        """The container's log from its first byte, in chunks as they arrive (never whole).

        The kubelet keeps a terminated container's log while its pod exists, so this also
        reads a trial that has ended. ApiError as _request raises it.
        """
        params = {"container": container} if container else None
        headers = self._auth_headers()
        headers["Accept"] = "text/plain"
        path = f"/api/v1/namespaces/{namespace}/pods/{name}/log"
        try:
            async with self._http.stream("GET", path, params=params, headers=headers) as response:
                if response.status_code >= 400:
                    await response.aread()
                    reason, message = _status_details(response)
                    raise ApiError(response.status_code, reason, message)
                async for chunk in response.aiter_bytes():
                    yield chunk
        except httpx.HTTPError as error:
            raise ApiError(0, type(error).__name__, str(error) or "no answer") from error

    # Sweeps.
    def _sweep_path(self, namespace: str, name: str) -> str:
        return f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}/{name}"

    async def get_sweep(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", self._sweep_path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def patch_sweep_status(
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the status; with resource_version, only onto that version (else 409)."""
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._request(
            "PATCH",
            self._sweep_path(namespace, name) + "/status",
            json=body,
            content_type=MERGE_PATCH,
        )

    async def annotate_sweep(
        self, namespace: str, name: str, annotations: dict[str, str]
    ) -> dict[str, Any]:
        """Merge-patch annotations onto the sweep (its metadata, not its spec or status)."""
        return await self._request(
            "PATCH",
            self._sweep_path(namespace, name),
            json={"metadata": {"annotations": annotations}},
            content_type=MERGE_PATCH,
        )

    # Leases (leader election).
    def _lease_path(self, namespace: str, name: str | None = None) -> str:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        return f"{path}/{name}" if name else path

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", self._lease_path(namespace, name))
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def create_lease(self, namespace: str, lease: dict[str, Any]) -> dict[str, Any]:
        """409 AlreadyExists when another operator created it first."""
        return await self._request("POST", self._lease_path(namespace), json=lease)

    async def replace_lease(self, namespace: str, lease: dict[str, Any]) -> dict[str, Any]:
        """PUT carrying metadata.resourceVersion: 409 Conflict when it changed meanwhile."""
        name = lease["metadata"]["name"]
        return await self._request("PUT", self._lease_path(namespace, name), json=lease)

    def _auth_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        token = bearer_token(self._cfg)
        if token:
            headers["Authorization"] = token
        elif self._cfg.username and (basic := self._cfg.get_basic_auth_token()):
            headers["Authorization"] = basic
        return headers

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = self._auth_headers()
        headers["Accept"] = "application/json"
        body = None
        if json is not None:
            headers["Content-Type"] = content_type
            body = _dumps(json)
        try:
            response = await self._http.request(
                method, path, content=body, params=params, headers=headers
            )
        except httpx.HTTPError as error:
            raise ApiError(0, type(error).__name__, str(error) or "no answer") from error
        if response.status_code >= 400:
            reason, message = _status_details(response)
            raise ApiError(response.status_code, reason, message)
        try:
            data: dict[str, Any] = response.json()
        except ValueError as error:
            raise ApiError(response.status_code, "BadResponse", "not JSON") from error
        return data


def _dumps(value: Any) -> bytes:
    return jsonlib.dumps(value, separators=(",", ":")).encode()


def _status_details(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "Error", response.text[:200]
    if isinstance(body, dict):
        return str(body.get("reason") or response.reason_phrase), str(body.get("message") or "")
    return response.reason_phrase or "Error", ""
