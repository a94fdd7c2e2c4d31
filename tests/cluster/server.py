"""HTTP front of the simulated API server (aiohttp): routing, discovery, verbs, watch streams."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from . import discovery, limits, openapi, protobuf, tables
from .api import Api, WriteOptions
from .errors import ApiError
from .faults import Faults
from .lifecycle import DeleteOptions
from .meta import manager_from
from .resources import ResourceType
from .selectors import field_matcher, label_matcher
from .store import Event, Watcher

log = logging.getLogger(__name__)

# Logs provider: (namespace, pod, container, query) -> chunks of the log (follow streams more).
LogSource = Callable[[str, str, str | None, dict[str, str]], AsyncIterator[bytes]]


@dataclass
class Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool


def _json(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(
            '299 - "' + w.replace("\\", "\\\\").replace('"', '\\"') + '"' for w in warnings
        )
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


class ApiServer:
    def __init__(self, api: Api, faults: Faults, server_address: str = "127.0.0.1") -> None:
        self.api = api
        self.faults = faults
        self.server_address = server_address
        self.logs: LogSource | None = None
        self.bookmark_interval = 1.0
        self.expired_watches = 0  # watches answered 410 Gone (resourceVersion too old)
        self.default_watch_timeout = 1800.0
        # Unexpected exceptions (bugs in the simulation): tests assert this stays empty.
        self.internal_errors: list[str] = []
        # Recent requests (method, path with query, Accept, User-Agent), newest last.
        self.requests: deque[tuple[str, str, str, str]] = deque(maxlen=5000)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)

    # -- routing ----------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        self.requests.append(
            (
                request.method,
                request.path_qs,
                request.headers.get("Accept", ""),
                request.headers.get("User-Agent", ""),
            )
        )
        try:
            target = None
            parts = path.strip("/").split("/")
            if (parts[0] == "api" and len(parts) > 2) or (parts[0] == "apis" and len(parts) > 3):
                target = self._target(path)
            verb = self._verb(request, target)
            resource = self._resource_name(target)
            forced = self.faults.on_request(verb, resource)
            if self.faults.latency:
                await asyncio.sleep(self.faults.latency)
            if forced is not None:
                raise ApiError(forced, f"injected fault: {forced} for {verb} {resource}")
            if target is None:
                return self._non_resource(path)
            return await self._serve(request, target, verb)
        except ApiError as err:
            return _json(err.status(), err.code)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug in the simulation: answer 500 and record it
            detail = f"{request.method} {request.path_qs}: {exc!r}\n{traceback.format_exc()}"
            self.internal_errors.append(detail)
            log.error("test cluster internal error: %s", detail)
            return _json(ApiError(500, f"internal error: {exc!r}").status(), 500)

    @staticmethod
    def _resource_name(target: Target | None) -> str:
        if target is None:
            return "discovery"
        rt = target.rt
        name = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
        return f"{name}/{target.subresource}" if target.subresource else name

    @staticmethod
    def _verb(request: web.Request, target: Target | None) -> str:
        method = request.method
        if target is None:
            return "get"
        if method == "GET":
            if target.name is not None:
                return "get"
            return "watch" if _is_watch(request, target) else "list"
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if target.name is not None else "deletecollection",
        }.get(method, method.lower())

    def _target(self, path: str) -> Target:
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            group, rest = "", parts[1:]
        else:
            group, rest = parts[1] if len(parts) > 1 else "", parts[2:]
        if not rest:
            raise ApiError(404, "the server could not find the requested resource")
        version, rest = rest[0], rest[1:]
        if not rest:
            raise ApiError(404, "the server could not find the requested resource")
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        namespace = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and self.api.registry.get(group, version, rest[2]) is not None
        ):
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "the server could not find the requested resource")
        rt = self.api.resource(group, version, rest[0])
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            raise ApiError(404, "the server could not find the requested resource")
        return Target(rt, namespace, name, sub, watch_path)

    def _non_resource(self, path: str) -> web.Response:
        registry = self.api.registry
        if path == "/version":
            return _json(discovery.KUBE_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/api":
            return _json(discovery.core_versions(self.server_address))
        if path == "/apis":
            return _json(discovery.api_group_list(registry))
        if path == "/openapi/v3":
            return _json(openapi.root_doc(registry))
        parts = path.strip("/").split("/")
        if path.startswith("/openapi/v3/"):
            gv = parts[2:]
            group, version = (
                ("", gv[1])
                if gv[0] == "api" and len(gv) == 2
                else ((gv[1], gv[2]) if len(gv) == 3 else ("", ""))
            )
            doc = openapi.group_version_doc(registry, group, version) if version else None
            if doc is not None:
                return _json(doc)
        elif parts[0] == "api" and len(parts) == 2:
            found = discovery.resource_list(registry, "", parts[1])
            if found is not None:
                return _json(found)
        elif parts[0] == "apis" and len(parts) == 2 and parts[1] in registry.groups():
            return _json(discovery.api_group(registry, parts[1]))
        elif parts[0] == "apis" and len(parts) == 3:
            found = discovery.resource_list(registry, parts[1], parts[2])
            if found is not None:
                return _json(found)
        raise ApiError(404, "the server could not find the requested resource")

    # -- verbs --------------------------------------------------------------------------------

    async def _serve(self, request: web.Request, target: Target, verb: str) -> web.StreamResponse:
        api, rt, q = self.api, target.rt, request.query
        ns = target.namespace if rt.namespaced else ""
        if verb == "get" and target.subresource == "log":
            return await self._logs(request, target)
        if verb == "get":
            assert target.name is not None
            obj = api.get(rt, ns or "", target.name)
            if tables.wants_table(request.headers.get("Accept", "")):
                rv = obj["metadata"]["resourceVersion"]
                return _json(tables.table(rt, [obj], rv, q.get("includeObject", "")))
            return _json(obj)
        if verb == "list":
            listed = api.list_objects(rt, ns, q.get("labelSelector"), q.get("fieldSelector"))
            if tables.wants_table(request.headers.get("Accept", "")):
                rv = listed["metadata"]["resourceVersion"]
                items = [
                    {**i, "apiVersion": rt.api_version, "kind": rt.kind} for i in listed["items"]
                ]
                return _json(tables.table(rt, items, rv, q.get("includeObject", "")))
            return _json(listed)
        if verb == "watch":
            return await self._watch(request, target)
        body = await _read_body(request)
        opts = WriteOptions(
            dry_run=q.get("dryRun") == "All",
            field_validation=q.get("fieldValidation", ""),
            manager=manager_from(request.headers.get("User-Agent", ""), q.get("fieldManager")),
        )
        if verb == "create":
            if target.name is not None:
                raise ApiError(
                    405, "the server does not allow this method on the requested resource"
                )
            created = api.create(rt, ns or "", body, opts)
            return _json(created, 201, opts.warnings)
        if verb == "update":
            assert target.name is not None
            updated = api.update(
                rt, ns or "", target.name, body, opts, subresource=target.subresource
            )
            return _json(updated, 200, opts.warnings)
        if verb == "patch":
            assert target.name is not None
            content_type = request.headers.get("Content-Type", "")
            patched = api.patch(
                rt, ns or "", target.name, content_type, body, opts, subresource=target.subresource
            )
            return _json(patched, 200, opts.warnings)
        if verb == "delete":
            assert target.name is not None
            obj, gone = api.delete(rt, ns or "", target.name, _delete_options(q, body))
            return _json(obj, 200 if gone else 202)
        if verb == "deletecollection":
            listed = api.list_objects(rt, ns, q.get("labelSelector"), q.get("fieldSelector"))
            for item in listed["items"]:
                md = item["metadata"]
                api.delete(rt, md.get("namespace", ""), md["name"], _delete_options(q, body))
            return _json(listed)
        raise ApiError(405, f"method {request.method} is not allowed here")

    async def _logs(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.name is not None
        ns = target.namespace or "default"
        self.api.get(target.rt, ns, target.name)  # 404 for an unknown pod
        if self.logs is None:
            raise ApiError(400, "no kubelet is running in this test cluster")
        chunks = self.logs(ns, target.name, request.query.get("container"), dict(request.query))
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        first = True
        async for chunk in chunks:
            if first:
                await resp.prepare(request)
                first = False
            await resp.write(chunk)
        if first:
            await resp.prepare(request)
        await resp.write_eof()
        return resp

    # -- watch --------------------------------------------------------------------------------

    def drop_watches(self) -> None:
        for watcher in list(self.api.store.watchers):
            watcher.close()

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, q, store = target.rt, request.query, self.api.store
        ns = target.namespace if rt.namespaced else None
        labels_ok = label_matcher(q.get("labelSelector"))
        fields_ok = field_matcher(q.get("fieldSelector"))
        if target.name is not None:  # legacy /watch/<plural>/<name>
            name = target.name
            by_name = fields_ok
            fields_ok = lambda o: by_name(o) and o["metadata"]["name"] == name  # noqa: E731

        def matches(obj: dict[str, Any] | None) -> bool:
            if obj is None:
                return False
            if ns is not None and obj["metadata"].get("namespace") != ns:
                return False
            return labels_ok(obj["metadata"].get("labels") or {}) and fields_ok(obj)

        def same_type(event: Event) -> bool:
            return (event.group, event.plural) == rt.storage_key

        watcher = Watcher(same_type)
        store.watchers.add(watcher)
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        bookmarks = q.get("allowWatchBookmarks") == "true"
        timeout = float(q.get("timeoutSeconds") or self.default_watch_timeout)
        deadline = time.monotonic() + timeout

        as_table = tables.wants_table(request.headers.get("Accept", ""))

        async def send(kind: str, obj: dict[str, Any]) -> None:
            obj = {**obj, "apiVersion": rt.api_version, "kind": obj.get("kind", rt.kind)}
            if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
                # `kubectl get -w`: every event carries a one-row Table.
                rv = obj["metadata"].get("resourceVersion", "")
                obj = tables.table(rt, [obj], rv, q.get("includeObject", ""))
            await resp.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        try:
            since = q.get("resourceVersion", "")
            initial = q.get("sendInitialEvents") == "true"
            if since in ("", "0") or initial:
                snapshot = [o for o in store.items(rt.group, rt.plural, ns) if matches(o)]
                watcher.skip_until = store.rv
                for obj in snapshot:
                    await send("ADDED", obj)
                if initial:
                    await send("BOOKMARK", self._bookmark(rt, initial_end=True))
            else:
                try:
                    from_rv = int(since)
                except ValueError as exc:
                    raise ApiError(400, f"invalid resourceVersion {since!r}") from exc
                backlog = store.events_since(from_rv)
                watcher.skip_until = store.rv
                if backlog is None:
                    self.expired_watches += 1
                    gone = ApiError(
                        410, f"too old resource version: {from_rv} ({store.compacted_rv})"
                    )
                    await resp.write(
                        json.dumps({"type": "ERROR", "object": gone.status()}).encode() + b"\n"
                    )
                    return resp
                for old in backlog:
                    if same_type(old):
                        await self._send_event(send, old, matches)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(remaining, self.bookmark_interval) if bookmarks else remaining
                try:
                    event: Event | None = await asyncio.wait_for(watcher.queue.get(), wait)
                except TimeoutError:
                    if bookmarks and time.monotonic() < deadline:
                        await send("BOOKMARK", self._bookmark(rt))
                    continue
                if event is None:
                    break  # dropped by a fault
                if event.rv <= watcher.skip_until:
                    continue
                await self._send_event(send, event, matches)
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            store.watchers.discard(watcher)
        return resp

    @staticmethod
    async def _send_event(
        send: Callable[[str, dict[str, Any]], Any],
        event: Event,
        matches: Callable[[dict[str, Any] | None], bool],
    ) -> None:
        """Translate by selector: objects entering the selection are ADDED, leaving it DELETED."""
        now_in = matches(event.obj)
        if event.type == "MODIFIED":
            was_in = matches(event.old)
            if now_in and not was_in:
                await send("ADDED", event.obj)
            elif was_in and not now_in:
                await send("DELETED", event.obj)
            elif now_in:
                await send("MODIFIED", event.obj)
        elif now_in:
            await send(event.type, event.obj)

    def _bookmark(self, rt: ResourceType, initial_end: bool = False) -> dict[str, Any]:
        md: dict[str, Any] = {"resourceVersion": str(self.api.store.rv)}
        if initial_end:
            md["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": md}


def _is_watch(request: web.Request, target: Target) -> bool:
    return target.watch_path or request.query.get("watch") in ("true", "1")


async def _read_body(request: web.Request) -> Any:
    raw = await request.read()
    limits.check_body(raw)
    if not raw:
        return None
    content_type = request.headers.get("Content-Type", "")
    if "protobuf" in content_type:
        return protobuf.decode(raw)
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc


def _delete_options(query: Any, body: Any) -> DeleteOptions:
    body = body if isinstance(body, dict) else {}
    grace = query.get("gracePeriodSeconds", body.get("gracePeriodSeconds"))
    return DeleteOptions(
        grace_period=int(grace) if grace is not None else None,
        propagation=query.get("propagationPolicy", body.get("propagationPolicy")),
        preconditions=body.get("preconditions") or {},
        dry_run=query.get("dryRun") == "All" or body.get("dryRun") == ["All"],
    )
