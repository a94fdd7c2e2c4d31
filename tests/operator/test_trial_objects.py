"""Stopping a trial workload: a JobSet's pods do not know its uid, so the object of the
trial's name is deleted only when it is the same attempt (a requeued trial's new object
reuses the name)."""

import asyncio
from typing import Any

from kubetune.operator.trial_objects import create_trial, delete_custom_workloads, delete_trial


class FakeKube:
    def __init__(self, stored: dict[str, Any] | None) -> None:
        self.stored = stored
        self.calls: list[tuple[Any, ...]] = []

    async def get_object(self, *args: str) -> dict[str, Any] | None:
        self.calls.append(("get", *args))
        return self.stored

    async def delete_object(self, *args: str, uid: str) -> bool:
        self.calls.append(("delete", *args, uid))
        return True

    async def create_object(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("create", *args[:3]))
        return {}


def _jobset(attempt: str) -> dict[str, Any]:
    return {"metadata": {"uid": "u2", "annotations": {"kubetune.dev/attempt": attempt}}}


def test_a_jobset_of_the_same_attempt_is_deleted_with_its_uid() -> None:
    kube = FakeKube(_jobset("1"))
    asyncio.run(delete_trial(kube, "ns", "s-t0000", "", "jobset.x-k8s.io/v1alpha2/JobSet", 1))  # type: ignore[arg-type]
    assert kube.calls[-1] == (
        "delete",
        "jobset.x-k8s.io",
        "v1alpha2",
        "jobsets",
        "ns",
        "s-t0000",
        "u2",
    )


def test_a_newer_attempts_jobset_is_left_alone() -> None:
    kube = FakeKube(_jobset("2"))
    asyncio.run(delete_trial(kube, "ns", "s-t0000", "", "jobset.x-k8s.io/v1alpha2/JobSet", 1))  # type: ignore[arg-type]
    assert [call[0] for call in kube.calls] == ["get"]


def test_a_pytorchjob_with_a_known_uid_is_deleted_without_a_read() -> None:
    kube = FakeKube(None)
    asyncio.run(delete_trial(kube, "ns", "s-t0000", "u1", "kubeflow.org/v1/PyTorchJob", 1))  # type: ignore[arg-type]
    assert kube.calls == [("delete", "kubeflow.org", "v1", "pytorchjobs", "ns", "s-t0000", "u1")]
    obj = {"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob", "metadata": {"namespace": "ns"}}
    asyncio.run(create_trial(kube, obj))  # type: ignore[arg-type]
    assert kube.calls[-1] == ("create", "kubeflow.org", "v1", "pytorchjobs")


class DiscoveringKube(FakeKube):
    """Serves example.dev/v1 TrainingRun as trainingruns; lists one object of the sweep."""

    async def resource_plural(self, group: str, version: str, kind: str) -> str | None:
        self.calls.append(("discover", group, version, kind))
        return (
            "trainingruns"
            if (group, version, kind) == ("example.dev", "v1", "TrainingRun")
            else None
        )

    async def list_objects(self, *args: str) -> list[dict[str, Any]]:
        self.calls.append(("list", *args))
        return [{"metadata": {"name": "s-t0000", "uid": "u9"}}]


def test_a_custom_kind_is_found_by_discovery_and_deleted_with_the_sweep() -> None:
    kube = DiscoveringKube(None)
    spec = {"workload": {"object": {"apiVersion": "example.dev/v1", "kind": "TrainingRun"}}}
    asyncio.run(delete_custom_workloads(kube, "ns", "s", spec))  # type: ignore[arg-type]
    assert kube.calls[-1] == (
        "delete",
        "example.dev",
        "v1",
        "trainingruns",
        "ns",
        "s-t0000",
        "u9",
    )
    # A kind kubetune knows, or none, is the other deletes' business.
    for other in ({"workload": {"object": {"apiVersion": "batch/v1", "kind": "Job"}}}, {}):
        kube = DiscoveringKube(None)
        asyncio.run(delete_custom_workloads(kube, "ns", "s", other))  # type: ignore[arg-type]
        assert kube.calls == []
    # A kind the cluster does not serve: nothing to delete.
    kube = DiscoveringKube(None)
    missing = {"workload": {"object": {"apiVersion": "example.dev/v1", "kind": "Gone"}}}
    asyncio.run(delete_custom_workloads(kube, "ns", "s", missing))  # type: ignore[arg-type]
    assert [call[0] for call in kube.calls] == ["discover"]
