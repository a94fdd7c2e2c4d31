"""The kubernetes Python client against the test cluster: CRUD, watch, status, lifecycle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from .cluster import Cluster
from .fixtures import TESTDATA

GROUP, VERSION, PLURAL = "example.kubetune.dev", "v1alpha1", "experiments"


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> Iterator[None]:
    cluster.apply_crd(TESTDATA / "experiments-crd.yaml")
    yield


# The client's generated signatures ask for model classes; plain dicts are what it documents
# as accepted too, and what these tests send, so the clients are typed loosely here.
@pytest.fixture(scope="module")
def core(cluster: Cluster) -> Any:
    return client.CoreV1Api(cluster.api_client())


@pytest.fixture(scope="module")
def custom(cluster: Cluster) -> Any:
    return client.CustomObjectsApi(cluster.api_client())


def experiment(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {"objective": "eval_loss", **spec},
    }


def test_configmap_crud(core: Any, namespace: str) -> None:
    created = core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "cfg", "labels": {"a": "1"}}, "data": {"k": "v"}}
    )
    assert created.metadata.uid and created.metadata.resource_version
    read = core.read_namespaced_config_map("cfg", namespace)
    assert read.data == {"k": "v"}
    read.data["k"] = "w"
    replaced = core.replace_namespaced_config_map("cfg", namespace, read)
    assert replaced.data == {"k": "w"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    patched = core.patch_namespaced_config_map("cfg", namespace, {"data": {"x": "y"}})
    assert patched.data == {"k": "w", "x": "y"}
    core.delete_namespaced_config_map("cfg", namespace)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("cfg", namespace)
    assert err.value.status == 404


def test_create_twice_conflicts_and_stale_writes_are_rejected(core: Any, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "once"}})
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "once"}})
    assert err.value.status == 409 and "AlreadyExists" in str(err.value.body)

    stale = core.read_namespaced_config_map("once", namespace)
    core.patch_namespaced_config_map("once", namespace, {"data": {"v": "1"}})
    stale.data = {"v": "2"}
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("once", namespace, stale)
    assert err.value.status == 409 and "the object has been modified" in str(err.value.body)


def test_missing_namespace_and_names_are_errors(core: Any) -> None:
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map("default", {"metadata": {"name": "Bad_Name"}})
    assert err.value.status == 422 and "RFC 1123" in str(err.value.body)


def test_generate_name(core: Any, namespace: str) -> None:
    made = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "run-"}})
    assert made.metadata.name.startswith("run-") and len(made.metadata.name) == 9


def test_label_and_field_selectors(core: Any, namespace: str) -> None:
    for name, labels in [
        ("a", {"tier": "x", "env": "prod"}),
        ("b", {"tier": "y"}),
        ("c", {"tier": "z", "env": "dev"}),
    ]:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})

    def names(**kw: str) -> list[str]:
        return sorted(
            i.metadata.name for i in core.list_namespaced_config_map(namespace, **kw).items
        )

    assert names(label_selector="tier=x") == ["a"]
    assert names(label_selector="tier!=x") == ["b", "c"]
    assert names(label_selector="tier in (x, y)") == ["a", "b"]
    assert names(label_selector="tier notin (x,y)") == ["c"]
    assert names(label_selector="env") == ["a", "c"]
    assert names(label_selector="!env") == ["b"]
    assert names(label_selector="env,tier=z") == ["c"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.name!=b") == ["a", "c"]
    assert names(field_selector=f"metadata.namespace={namespace}") == ["a", "b", "c"]


def test_custom_object_status_subresource(custom: Any, namespace: str) -> None:
    args = (GROUP, VERSION, namespace, PLURAL)
    created = custom.create_namespaced_custom_object(
        *args, {**experiment("e1"), "status": {"phase": "Ignored"}}
    )
    assert "status" not in created  # status is ignored on create when it is a subresource
    patched = custom.patch_namespaced_custom_object_status(
        *args[:3], PLURAL, "e1", {"status": {"phase": "Running"}, "spec": {"objective": "x"}}
    )
    assert patched["status"] == {"phase": "Running"}
    assert patched["spec"]["objective"] == "eval_loss"  # /status ignores the rest
    assert patched["metadata"]["generation"] == 1  # status changes keep the generation
    main = custom.patch_namespaced_custom_object(
        *args[:3], PLURAL, "e1", {"spec": {"direction": "maximize"}, "status": {"phase": "X"}}
    )
    assert main["status"] == {"phase": "Running"}  # the main resource ignores status
    assert main["metadata"]["generation"] == 2
    # JSON patch works too.
    custom.api_client.set_default_header("Content-Type", "application/json-patch+json")
    try:
        jp = custom.patch_namespaced_custom_object(
            *args[:3],
            PLURAL,
            "e1",
            [{"op": "replace", "path": "/spec/algorithm", "value": "random"}],
        )
    finally:
        custom.api_client.default_headers.pop("Content-Type", None)
    assert jp["spec"]["algorithm"] == "random"


def test_watch_sees_changes_and_resumes_from_resource_version(core: Any, namespace: str) -> None:
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "w1"}})
    rv = first.metadata.resource_version
    core.patch_namespaced_config_map("w1", namespace, {"data": {"a": "b"}})
    core.delete_namespaced_config_map("w1", namespace)
    seen = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=1
        )
    ]
    assert seen == [("MODIFIED", "w1"), ("DELETED", "w1")]


def test_watch_streams_live_events(core: Any, namespace: str) -> None:
    events: list[tuple[str, str]] = []
    added = threading.Event()
    w = watch.Watch()

    def consume() -> None:
        for e in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=5):
            events.append((e["type"], e["object"].metadata.name))
            added.set()
            if len(events) == 2:
                w.stop()

    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "live"}})
    # A watch without a resourceVersion that connects after the patch gets one synthetic
    # ADDED of the patched object and no MODIFIED, as a real API server sends: patch only
    # once the stream has the object (live or synthetic ADDED), so the order is fixed.
    assert added.wait(10), "the watch saw no ADDED"
    core.patch_namespaced_config_map("live", namespace, {"data": {"a": "b"}})
    thread.join(10)
    assert events == [("ADDED", "live"), ("MODIFIED", "live")]


def test_too_old_resource_version_is_410_gone(cluster: Cluster, core: Any, namespace: str) -> None:
    made = core.create_namespaced_config_map(namespace, {"metadata": {"name": "old"}})
    core.patch_namespaced_config_map("old", namespace, {"data": {"a": "b"}})
    cluster.compact()
    with pytest.raises(ApiException) as err:
        list(
            watch.Watch().stream(
                core.list_namespaced_config_map,
                namespace,
                resource_version=made.metadata.resource_version,
                timeout_seconds=1,
            )
        )
    assert err.value.status == 410


def test_finalizers_hold_deletion(custom: Any, namespace: str) -> None:
    args = (GROUP, VERSION, namespace, PLURAL)
    body = experiment("held")
    body["metadata"]["finalizers"] = ["example.kubetune.dev/cleanup"]
    custom.create_namespaced_custom_object(*args, body)
    custom.delete_namespaced_custom_object(*args, "held")
    held = custom.get_namespaced_custom_object(*args, "held")
    assert held["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as err:  # no new finalizers while deleting
        custom.patch_namespaced_custom_object(
            *args, "held", {"metadata": {"finalizers": ["example.kubetune.dev/cleanup", "x/y"]}}
        )
    assert err.value.status == 422
    custom.patch_namespaced_custom_object(*args, "held", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        custom.get_namespaced_custom_object(*args, "held")
    assert err.value.status == 404


def create_owner_and_dependent(core: Any, custom: Any, namespace: str, **ref: Any) -> None:
    """Experiment "owner" and ConfigMap "dep" whose ownerReference (plus `ref`) names it."""
    owner = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, experiment("owner")
    )
    reference = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
        **ref,
    }
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dep", "ownerReferences": [reference]}}
    )


def test_owner_deletion_collects_dependents(core: Any, custom: Any, namespace: str) -> None:
    create_owner_and_dependent(core, custom, namespace, controller=True, blockOwnerDeletion=True)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "kept"}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "owner")
    names = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items]
    assert names == ["kept"]


def test_orphan_propagation_keeps_dependents(core: Any, custom: Any, namespace: str) -> None:
    create_owner_and_dependent(core, custom, namespace)
    custom.delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "owner", propagation_policy="Orphan"
    )
    dep = core.read_namespaced_config_map("dep", namespace)
    assert not dep.metadata.owner_references


def test_namespace_deletion_removes_its_contents(cluster: Cluster, core: Any) -> None:
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    core.delete_namespace("doomed")
    cluster.wait_for_deletion("namespaces", "doomed", namespace="")
    assert cluster.list_objects("configmaps", "doomed") == []


def test_events_in_both_api_groups(cluster: Cluster, core: Any, namespace: str) -> None:
    core.create_namespaced_event(
        namespace,
        {
            "metadata": {"name": "ev1"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Tested",
            "message": "hello",
            "type": "Normal",
        },
    )
    events: Any = client.EventsV1Api(cluster.api_client())
    events.create_namespaced_event(
        namespace,
        {
            "metadata": {"name": "ev2"},
            "regarding": {"kind": "Pod", "name": "p"},
            "reason": "Tested",
            "note": "hello",
            "type": "Normal",
            "action": "Test",
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "t",
            "reportingInstance": "t",
        },
    )
    listed = core.list_namespaced_event(namespace, field_selector="involvedObject.name=p")
    assert [e.reason for e in listed.items] == ["Tested"]
    assert [e.note for e in events.list_namespaced_event(namespace).items] == ["hello"]


def test_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    with Cluster(tmp_path, tls=True, kubelet=False) as secure:
        assert secure.server_url.startswith("https://")
        api: Any = client.CoreV1Api(secure.api_client())
        names = [n.metadata.name for n in api.list_namespace().items]
        assert "default" in names
        result = secure.kubectl("get", "ns", "default", "-o", "name")
        assert result.stdout.strip() == "namespace/default", result.stderr


def test_crd_created_by_the_client_is_served_and_deleting_it_deletes_its_objects(
    cluster: Cluster,
) -> None:
    extensions: Any = client.ApiextensionsV1Api(cluster.api_client())
    crd = {
        "metadata": {"name": "gadgets.example.kubetune.dev"},
        "spec": {
            "group": "example.kubetune.dev",
            "scope": "Cluster",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    made = extensions.create_custom_resource_definition(crd)
    assert {c.type: c.status for c in made.status.conditions} == {
        "NamesAccepted": "True",
        "Established": "True",
    }
    custom: Any = client.CustomObjectsApi(cluster.api_client())
    custom.create_cluster_custom_object(
        "example.kubetune.dev",
        "v1",
        "gadgets",
        {
            "apiVersion": "example.kubetune.dev/v1",
            "kind": "Gadget",
            "metadata": {"name": "g1"},
            "anything": {"goes": True},
        },
    )
    listed = custom.list_cluster_custom_object("example.kubetune.dev", "v1", "gadgets")
    assert [(i["metadata"]["name"], i["anything"]) for i in listed["items"]] == [
        ("g1", {"goes": True})
    ]

    bad = {**crd, "metadata": {"name": "wrong.example.kubetune.dev"}}
    with pytest.raises(ApiException) as err:
        extensions.create_custom_resource_definition(bad)
    assert err.value.status == 422 and "spec.names.plural" in str(err.value.body)

    extensions.delete_custom_resource_definition("gadgets.example.kubetune.dev")
    cluster.wait_for_deletion(
        "customresourcedefinitions",
        "gadgets.example.kubetune.dev",
        namespace="",
        group="apiextensions.k8s.io",
    )
    with pytest.raises(ApiException) as err:
        custom.list_cluster_custom_object("example.kubetune.dev", "v1", "gadgets")
    assert err.value.status == 404
    assert (
        cluster.call(lambda: cluster.api.store.items("example.kubetune.dev", "gadgets", None)) == []
    )


def test_unknown_fields_of_built_in_kinds_are_dropped_with_a_warning(
    cluster: Cluster, core: Any, namespace: str
) -> None:
    # Raw HTTP: the client's own models would refuse to send the typo at all.
    body = {"metadata": {"name": "w"}, "data": {"a": "b"}, "dta": {"c": "d"}}
    response = httpx.post(
        f"{cluster.server_url}/api/v1/namespaces/{namespace}/configmaps", json=body
    )
    assert response.status_code == 201
    assert response.headers["Warning"] == '299 - "unknown field \\"dta\\""'
    assert core.read_namespaced_config_map("w", namespace).data == {"a": "b"}
    strict = httpx.post(
        f"{cluster.server_url}/api/v1/namespaces/{namespace}/configmaps",
        params={"fieldValidation": "Strict"},
        json={**body, "metadata": {"name": "w2"}},
    )
    assert strict.status_code == 400
    assert 'strict decoding error: unknown field "dta"' in strict.json()["message"]


def test_status_merge_patch_with_a_stale_resource_version_conflicts(
    custom: Any, namespace: str
) -> None:
    args = (GROUP, VERSION, namespace, PLURAL)
    created = custom.create_namespaced_custom_object(*args, experiment("rv"))
    seen = created["metadata"]["resourceVersion"]
    first = custom.patch_namespaced_custom_object_status(
        *args[:3], PLURAL, "rv", {"metadata": {"resourceVersion": seen}, "status": {"phase": "A"}}
    )
    assert first["status"] == {"phase": "A"}
    with pytest.raises(ApiException) as stale:
        custom.patch_namespaced_custom_object_status(
            *args[:3],
            PLURAL,
            "rv",
            {"metadata": {"resourceVersion": seen}, "status": {"phase": "B"}},
        )
    assert stale.value.status == 409
    assert "the object has been modified" in str(stale.value.body)
    current = custom.get_namespaced_custom_object(*args[:3], PLURAL, "rv")
    assert current["status"] == {"phase": "A"}  # the stale write changed nothing


def test_leases_are_served_with_optimistic_concurrency(cluster: Cluster, namespace: str) -> None:
    leases: Any = client.CoordinationV1Api(cluster.api_client())
    body = {
        "metadata": {"name": "op"},
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-01T00:00:00.000000Z",
            "renewTime": "2026-01-01T00:00:00.000000Z",
            "leaseTransitions": 0,
        },
    }
    created = leases.create_namespaced_lease(namespace, body)
    assert created.spec.holder_identity == "a"
    stale = created.metadata.resource_version
    created.spec.holder_identity = "b"
    taken = leases.replace_namespaced_lease("op", namespace, created)
    assert taken.spec.holder_identity == "b"
    created.metadata.resource_version = stale
    created.spec.holder_identity = "c"
    with pytest.raises(ApiException) as lost:
        leases.replace_namespaced_lease("op", namespace, created)
    assert lost.value.status == 409
    assert leases.read_namespaced_lease("op", namespace).spec.holder_identity == "b"


def test_objects_over_etcds_request_limit_are_refused_like_a_real_server(
    cluster: Cluster, core: Any, namespace: str
) -> None:
    fits = "x" * (1024 * 1024)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "big"}, "data": {"a": fits}})
    with pytest.raises(ApiException) as grown:
        core.patch_namespaced_config_map("big", namespace, {"data": {"b": "y" * 600_000}})
    assert grown.value.status == 413
    assert "etcdserver: request is too large" in str(grown.value.body)
    assert "b" not in core.read_namespaced_config_map("big", namespace).data
    # A body over 3 MiB is refused before it is even decoded.
    response = httpx.post(
        f"{cluster.server_url}/api/v1/namespaces/{namespace}/configmaps",
        content=b'{"metadata":{"name":"huge"},"data":{"a":"' + b"z" * (3 * 1024 * 1024) + b'"}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["reason"] == "RequestEntityTooLarge"
    assert response.json()["message"] == "Request entity too large: limit is 3145728"
