"""One operator at a time: leader election on a coordination.k8s.io/v1 Lease.

Two operators on one cluster (a second install, `kubetune operator` from a laptop) would
both start trials for the same sweep and overwrite each other's status. So the operator
holds a Lease (in its own namespace, name `kubetune-operator`) before it starts kopf, and
a second one waits, doing nothing, until the lease is released or expires.

The rules are client-go's: a lease is free when it names no holder, or when its record
(holder, renewTime, resourceVersion) has not changed for leaseDurationSeconds as timed by
the contender's own clock (so clocks need not agree). Writes carry the resourceVersion read,
so of two contenders only one wins. The leader renews every `renew_every` seconds; when it
could not renew for `renew_deadline` seconds (less than the lease duration, so it stops
before anyone else may take over) it has lost the lease and must stop acting at once.
"""

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubetune import conventions
from kubetune.operator.kube import ApiError, KubeClient

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def operator_namespace() -> str:
    """Where the lease lives: $KUBETUNE_OPERATOR_NAMESPACE, the pod's namespace, or `kubetune`."""
    explicit = os.environ.get(conventions.ENV_OPERATOR_NAMESPACE)
    if explicit:
        return explicit
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as handle:
            return handle.read().strip() or conventions.DEFAULT_OPERATOR_NAMESPACE
    except OSError:
        return conventions.DEFAULT_OPERATOR_NAMESPACE


def default_identity() -> str:
    """Host name (the pod name in a cluster) plus a random part: each process is distinct."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str = conventions.OPERATOR_LEASE
    identity: str = field(default_factory=default_identity)
    duration: float = 15.0  # leaseDurationSeconds
    renew_deadline: float = 10.0
    renew_every: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_every < self.renew_deadline < self.duration:
            raise ValueError(
                "lease timings: need 0 < renew interval < renew deadline < lease duration, got "
                f"{self.renew_every} / {self.renew_deadline} / {self.duration} seconds"
            )


def _micro_time(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        kube: KubeClient,
        settings: LeaseSettings,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self._clock = clock
        self._wall = wall
        # The lease record as last seen, and when (own clock) it was first seen like that.
        self._seen: tuple[Any, ...] | None = None
        self._seen_at = 0.0
        self._lease: dict[str, Any] | None = None
        self.renewed_at: float | None = None  # own clock, last successful acquire or renew

    @property
    def leading(self) -> bool:
        return (
            self.renewed_at is not None
            and self._clock() - self.renewed_at < self.settings.renew_deadline
        )

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this process holds the lease afterwards."""
        s = self.settings
        lease = await self.kube.get_lease(s.namespace, s.name)
        now = self._wall()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": s.name, "namespace": s.namespace},
                "spec": self._spec(acquired=now, transitions=0),
            }
            try:
                self._lease = await self.kube.create_lease(s.namespace, body)
            except ApiError as error:
                if error.status == 409:
                    return False  # another contender created it first
                raise
            self.renewed_at = self._clock()
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), lease["metadata"].get("resourceVersion"))
        if record != self._seen:
            self._seen, self._seen_at = record, self._clock()
        duration = float(spec.get("leaseDurationSeconds") or s.duration)
        mine = holder == s.identity
        free = not holder or self._clock() - self._seen_at >= duration
        if not mine and not free:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        acquired = spec.get("acquireTime") if mine else None
        lease["spec"] = self._spec(acquired=now, transitions=transitions)
        if acquired:
            lease["spec"]["acquireTime"] = acquired
        try:
            self._lease = await self.kube.replace_lease(s.namespace, lease)
        except ApiError as error:
            if error.status == 409:
                return False  # someone else wrote it since we read it
            raise
        if not mine:
            log.info("took over lease %s/%s from %r", s.namespace, s.name, holder or None)
        self.renewed_at = self._clock()
        return True

    def _spec(self, *, acquired: float, transitions: int) -> dict[str, Any]:
        s = self.settings
        return {
            "holderIdentity": s.identity,
            "leaseDurationSeconds": max(1, round(s.duration)),
            "acquireTime": _micro_time(acquired),
            "renewTime": _micro_time(self._wall()),
            "leaseTransitions": transitions,
        }

    async def acquire(self, retry_every: float | None = None) -> None:
        """Wait until this process holds the lease (API errors other than conflicts raise)."""
        s = self.settings
        waiting_logged = False
        while not await self._attempt():
            if not waiting_logged:
                holder = (self._seen or ("",))[0]
                log.info(
                    "lease %s/%s is held by %r: waiting (no sweep is touched meanwhile)",
                    s.namespace,
                    s.name,
                    holder,
                )
                waiting_logged = True
            await asyncio.sleep(retry_every if retry_every is not None else s.renew_every)
        log.info("holding lease %s/%s as %s", s.namespace, s.name, s.identity)

    async def _attempt(self) -> bool:
        try:
            return await self.try_acquire_or_renew()
        except ApiError as error:
            if error.transient:
                log.warning("lease %s: %s", self.settings.name, error)
                return False
            raise

    async def keep(self, lost: Callable[[], None]) -> None:
        """Renew until cancelled; call ``lost`` once renewing failed past the renew deadline."""
        while True:
            await asyncio.sleep(self.settings.renew_every)
            renewed = await self._attempt()
            taken = self._seen is not None and self._seen[0] not in ("", self.settings.identity)
            if not renewed and (taken or not self.leading):
                log.error(
                    "lost lease %s/%s (%s): stopping",
                    self.settings.namespace,
                    self.settings.name,
                    f"now held by {self._seen[0]!r}"  # type: ignore[index]
                    if taken
                    else f"not renewed for {self.settings.renew_deadline:.0f}s",
                )
                lost()
                return

    async def release(self) -> None:
        """Give the lease up on a clean shutdown, so a successor need not wait it out."""
        if self._lease is None or not self.leading:
            return
        lease = dict(self._lease)
        spec = dict(lease.get("spec") or {})
        spec.update(
            holderIdentity=None, leaseDurationSeconds=1, renewTime=_micro_time(self._wall())
        )
        lease["spec"] = spec
        try:
            await self.kube.replace_lease(self.settings.namespace, lease)
        except ApiError as error:
            log.warning("could not release lease %s: %s", self.settings.name, error)
        self.renewed_at = None
