"""Pure pieces of the simulation: schema, patches, selectors, tables (no server needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .errors import ApiError
from .patches import json_patch, merge_patch, strategic_merge_patch
from .pod_discovery import target_groups
from .pod_status import merge_conditions
from .protobuf import decode
from .scheduling import Node, place
from .schema import apply_defaults, prune, validate
from .selectors import field_matcher, label_matcher
from .tables import human_age, jsonpath
from .termination import terminated_state, termination_message

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "size": {"type": "integer", "minimum": 1, "maximum": 3, "default": 2},
                "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "port": {"x-kubernetes-int-or-string": True},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "opt": {"type": "string", "nullable": True},
            },
        }
    },
}


def messages(spec: dict[str, object]) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in validate({"spec": spec}, SCHEMA)]


def test_validation_messages_name_field_and_rule() -> None:
    assert (
        messages({"name": "ok", "size": 2, "ratio": 0.5, "mode": "a", "port": "http", "opt": None})
        == []
    )
    assert messages({}) == ["spec.name: Required value"]
    assert messages({"name": "ABC"}) == [
        "spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"
    ]
    assert messages({"name": "abcdef"}) == ["spec.name: Too long: may not be more than 5 bytes"]
    assert messages({"name": "a", "size": 0}) == [
        "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
    ]
    assert messages({"name": "a", "size": 4}) == [
        "spec.size: Invalid value: 4: spec.size in body should be less than or equal to 3"
    ]
    assert messages({"name": "a", "ratio": 0}) == [
        "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"
    ]
    assert messages({"name": "a", "size": "2"}) == [
        'spec.size: Invalid value: "string": spec.size in body must be of type integer: "string"'
    ]
    assert messages({"name": "a", "mode": "c"}) == [
        'spec.mode: Unsupported value: "c": supported values: "a", "b"'
    ]
    assert messages({"name": "a", "tags": ["x", "y", "z"]}) == [
        "spec.tags: Too many: 3: must have at most 2 items"
    ]
    assert messages({"name": "a", "tags": [1]}) == [
        'spec.tags[0]: Invalid value: "integer": spec.tags[0] in body must be of type '
        'string: "integer"'
    ]
    assert messages({"name": "a", "port": 1.5}) != []


def test_pruning_and_defaulting() -> None:
    obj = {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {"name": "x"},
        "spec": {"name": "a", "bogus": 1, "free": {"any": {"thing": 1}}},
        "extra": True,
    }
    pruned, dropped = prune(obj, SCHEMA)
    assert dropped == ["spec.bogus", "extra"]
    assert pruned == {
        "apiVersion": "v",
        "kind": "K",
        "metadata": {"name": "x"},
        "spec": {"name": "a", "free": {"any": {"thing": 1}}},
    }
    assert apply_defaults(pruned, SCHEMA)["spec"]["size"] == 2
    assert "spec" not in apply_defaults({"metadata": {}}, SCHEMA)  # no parent, no default


def test_merge_patch() -> None:
    assert merge_patch(
        {"a": {"b": 1, "c": 2}, "l": [1, 2]}, {"a": {"b": None, "d": 3}, "l": [3]}
    ) == {"a": {"c": 2, "d": 3}, "l": [3]}


def test_json_patch() -> None:
    doc = {"a": [1, 2], "b": {"c": 1}}
    ops = [
        {"op": "add", "path": "/a/-", "value": 3},
        {"op": "remove", "path": "/b/c"},
        {"op": "replace", "path": "/a/0", "value": 0},
        {"op": "test", "path": "/a/1", "value": 2},
        {"op": "copy", "from": "/a", "path": "/d"},
        {"op": "move", "from": "/d", "path": "/e"},
    ]
    assert json_patch(doc, ops) == {"a": [0, 2, 3], "b": {}, "e": [0, 2, 3]}
    assert doc == {"a": [1, 2], "b": {"c": 1}}  # the input is untouched
    with pytest.raises(ApiError) as err:
        json_patch(doc, [{"op": "test", "path": "/a/0", "value": 9}])
    assert err.value.code == 422
    with pytest.raises(ApiError):
        json_patch(doc, [{"op": "remove", "path": "/nope"}])


def test_strategic_merge_patch_merges_lists_by_key() -> None:
    pod = {
        "spec": {
            "containers": [
                {"name": "a", "image": "1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "1"},
            ]
        },
        "metadata": {"finalizers": ["f1"]},
    }
    patch = {
        "spec": {
            "containers": [
                {"name": "a", "image": "2", "env": [{"name": "Y", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
            ]
        },
        "metadata": {"finalizers": ["f2"]},
    }
    merged = strategic_merge_patch(pod, patch)
    assert merged["spec"]["containers"] == [
        {
            "name": "a",
            "image": "2",
            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
        }
    ]
    assert merged["metadata"]["finalizers"] == ["f1", "f2"]
    removed = strategic_merge_patch(
        merged, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["f1"]}}
    )
    assert removed["metadata"]["finalizers"] == ["f2"]


def test_label_selectors() -> None:
    labels = {"app": "x", "tier": "web"}
    assert label_matcher("app=x,tier in (web, db)")(labels)
    assert not label_matcher("app=x,tier notin (web)")(labels)
    assert label_matcher("!missing,app")(labels)
    assert not label_matcher("app!=x")(labels)
    with pytest.raises(ApiError):
        label_matcher("app in x")


def test_field_selectors() -> None:
    pod = {"metadata": {"name": "p", "namespace": "n"}, "status": {"phase": "Running"}, "spec": {}}
    assert field_matcher("metadata.name=p,status.phase!=Failed")(pod)
    assert not field_matcher("status.phase=Pending")(pod)
    assert field_matcher("spec.nodeName=")(pod)


def test_jsonpath_and_ages() -> None:
    obj = {"status": {"trials": [{"n": 1}, {"n": 2}], "a.b": {"c": 3}}}
    assert jsonpath(obj, ".status.trials[1].n") == 2
    assert jsonpath(obj, ".status['a.b'].c") == 3
    assert jsonpath(obj, ".status.missing") is None
    assert human_age("2000-01-01T00:00:00Z").endswith("d")


def test_protobuf_bodies_as_kubectl_sends_them() -> None:
    # Bytes captured from `kubectl create secret generic hf --from-literal=token=abc`.
    secret = (
        b'k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12$\n\x12\n\x02hf\x12\x00\x1a\x00"\x00*'
        b'\x002\x008\x00B\x00\x12\x0c\n\x05token\x12\x03abc\x1a\x00\x1a\x00"\x00'
    )
    assert decode(secret) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hf"},
        "data": {"token": "YWJj"},
    }
    namespace = (
        b"k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1a\n\x12\n\x02x1\x12\x00\x1a\x00"
        b'"\x00*\x002\x008\x00B\x00\x12\x00\x1a\x02\n\x00\x1a\x00"\x00'
    )
    assert decode(namespace)["metadata"] == {"name": "x1"}
    pod = b"k8s\x00\n\t\n\x02v1\x12\x03Pod\x12\x00"
    with pytest.raises(ApiError) as err:
        decode(pod)
    assert err.value.code == 415 and "'Pod'" in err.value.message


def test_place_explains_why_no_node_fits() -> None:
    def gpu_pod(n: int, node: str = "", phase: str = "Running") -> dict[str, Any]:
        return {
            "spec": {
                "nodeName": node,
                "containers": [{"resources": {"limits": {"nvidia.com/gpu": n}}}],
            },
            "status": {"phase": phase},
        }

    nodes = [
        Node("a", 2, labels={"zone": "x"}),
        Node("b", 4, lost=True),
        Node("c", 8, labels={"zone": "y"}),
    ]
    running = [gpu_pod(2, "a"), gpu_pod(8, "c", phase="Succeeded")]
    assert place(gpu_pod(1), running, nodes) == ("c", "")  # finished pods free their GPUs
    pick_a = {**gpu_pod(1), "spec": {**gpu_pod(1)["spec"], "nodeSelector": {"zone": "x"}}}
    assert place(pick_a, running, nodes) == (
        None,
        "0/3 nodes are available: 1 Insufficient "
        "nvidia.com/gpu, 1 node(s) didn't match Pod's node "
        "affinity/selector, 1 node(s) had untolerated taint "
        "{node.kubernetes.io/unreachable: }.",
    )


def test_terminated_state_and_message(tmp_path: Path) -> None:
    killed = terminated_state(
        -9, oom_killed=False, started="s", finished="f", container_id="c", message=""
    )
    assert (killed["exitCode"], killed["signal"], killed["reason"]) == (137, 9, "Error")
    oom = terminated_state(
        -9, oom_killed=True, started="s", finished="f", container_id="c", message=""
    )
    assert oom["reason"] == "OOMKilled"
    log, msg = tmp_path / "log", tmp_path / "msg"
    log.write_text("\n".join(f"line {i}" for i in range(100)))
    assert termination_message(msg, log, 1, "File") == ""
    fallback = termination_message(msg, log, 1, "FallbackToLogsOnError")
    assert fallback.splitlines()[0] == "line 20" and fallback.endswith("line 99")
    assert termination_message(msg, log, 0, "FallbackToLogsOnError") == ""
    msg.write_bytes(b"x" * 5000)
    assert termination_message(msg, log, 1, "FallbackToLogsOnError") == "x" * 4096


def test_merge_conditions_moves_transition_time_only_on_flips() -> None:
    first = merge_conditions([], [("Ready", "False", "", "")], "t1")
    same = merge_conditions(first, [("Ready", "False", "PodCompleted", "")], "t2")
    assert same[0]["lastTransitionTime"] == "t1" and same[0]["reason"] == "PodCompleted"
    flipped = merge_conditions(
        same, [("Ready", "True", "", ""), ("Initialized", "True", "", "")], "t3"
    )
    assert [(c["type"], c["status"], c["lastTransitionTime"]) for c in flipped] == [
        ("Ready", "True", "t3"),
        ("Initialized", "True", "t3"),
    ]


def test_target_groups_match_kubernetes_sd_labels() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "namespace": "ns",
            "uid": "u",
            "labels": {"kubetune.dev/sweep": "s", "app.kubernetes.io/name": "x"},
            "annotations": {"prometheus.io/port": "9400"},
            "ownerReferences": [{"kind": "HyperparameterSweep", "name": "s", "controller": True}],
        },
        "spec": {
            "nodeName": "n",
            "containers": [
                {
                    "name": "a",
                    "image": "img",
                    "ports": [{"name": "metrics", "containerPort": 9400}, {"containerPort": 22}],
                },
                {"name": "b", "image": "img2"},
            ],
        },
        "status": {
            "podIP": "127.9.0.2",
            "hostIP": "127.0.0.1",
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    groups = target_groups([pod, {**pod, "status": {}}])  # the pod without an IP is skipped
    assert [g["targets"] for g in groups] == [["127.9.0.2:9400"], ["127.9.0.2:22"], ["127.9.0.2"]]
    labels = groups[0]["labels"]
    assert labels["__meta_kubernetes_pod_label_kubetune_dev_sweep"] == "s"
    assert labels["__meta_kubernetes_pod_labelpresent_app_kubernetes_io_name"] == "true"
    assert labels["__meta_kubernetes_pod_annotation_prometheus_io_port"] == "9400"
    assert labels["__meta_kubernetes_pod_container_port_name"] == "metrics"
    assert labels["__meta_kubernetes_pod_container_port_number"] == "9400"
    assert labels["__meta_kubernetes_pod_ready"] == "true"
    assert labels["__meta_kubernetes_pod_controller_kind"] == "HyperparameterSweep"
    assert "__meta_kubernetes_pod_container_port_name" not in groups[2]["labels"]


def test_unique_items_flags_each_repeat_by_json_equality() -> None:
    schema = {"type": "array", "uniqueItems": True}
    items: list[Any] = [1, 2, 1, 1.0, True, [1], [1.0], {"a": 1}, {"a": 1.0}, {"a": 2}]
    flagged = [c["field"] for c in validate(items, schema, "v")]
    assert flagged == ["v[2]", "v[3]", "v[4]", "v[6]", "v[8]"]
    long = list(range(50_000))
    assert validate([*long, 7], schema, "v") == [
        {"field": "v[50000]", "message": "Duplicate value: 7", "reason": "FieldValueDuplicate"}
    ]
