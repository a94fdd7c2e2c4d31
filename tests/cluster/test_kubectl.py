"""The real kubectl binary against the test cluster."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml

from .cluster import Cluster
from .fixtures import TESTDATA

EXPERIMENT = (TESTDATA / "experiment.yaml").read_text()
GROUP = "example.kubetune.dev"


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> Iterator[None]:
    cluster.apply_crd(TESTDATA / "experiments-crd.yaml")
    yield


def ok(result: object) -> str:
    assert getattr(result, "returncode") == 0, getattr(result, "stderr")  # noqa: B009
    return str(getattr(result, "stdout"))  # noqa: B009


def test_apply_creates_then_modifies_a_custom_resource(cluster: Cluster, namespace: str) -> None:
    assert "experiment.example.kubetune.dev/demo created" in ok(
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=EXPERIMENT)
    )
    created = cluster.get("experiments", "demo", namespace, GROUP)
    assert created is not None
    # Schema defaults were applied by the server.
    assert created["spec"]["algorithm"] == "tpe"
    assert created["spec"]["budget"] == {"maxTrials": 12, "parallelism": 1}
    assert created["metadata"]["generation"] == 1

    changed = EXPERIMENT.replace("maxTrials: 12", "maxTrials: 30")
    assert "configured" in ok(cluster.kubectl("apply", "-n", namespace, "-f", "-", input=changed))
    modified = cluster.get("experiments", "demo", namespace, GROUP)
    assert modified is not None
    assert modified["spec"]["budget"]["maxTrials"] == 30
    assert modified["metadata"]["generation"] == 2
    assert int(modified["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"]
    )
    assert "unchanged" in ok(cluster.kubectl("apply", "-n", namespace, "-f", "-", input=changed))


def test_get_prints_the_crd_printer_columns(cluster: Cluster, namespace: str) -> None:
    ok(cluster.kubectl("apply", "-n", namespace, "-f", "-", input=EXPERIMENT))
    ok(
        cluster.kubectl(
            "patch",
            "-n",
            namespace,
            "exp",
            "demo",
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"phase":"Running","best":{"value":1.25}}}',
        )
    )
    lines = ok(cluster.kubectl("get", "-n", namespace, "exp")).splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "BEST", "TRIALS", "AGE"]
    assert lines[1].split()[:4] == ["demo", "Running", "1.25", "12"]
    # priority-1 columns appear with -o wide; the category `kubetune` finds the kind too.
    wide = ok(cluster.kubectl("get", "-n", namespace, "experiments", "-o", "wide")).splitlines()
    assert wide[0].split() == ["NAME", "PHASE", "BEST", "TRIALS", "ALGORITHM", "AGE"]
    assert "demo" in ok(cluster.kubectl("get", "-n", namespace, "kubetune"))


def test_get_yaml_and_describe(cluster: Cluster, namespace: str) -> None:
    ok(cluster.kubectl("apply", "-n", namespace, "-f", "-", input=EXPERIMENT))
    obj = yaml.safe_load(ok(cluster.kubectl("get", "-n", namespace, "exp", "demo", "-o", "yaml")))
    assert obj["kind"] == "Experiment"
    assert obj["metadata"]["uid"]
    assert obj["metadata"]["namespace"] == namespace
    described = ok(cluster.kubectl("describe", "-n", namespace, "exp", "demo"))
    assert "Objective:" in described and "eval_loss" in described
    assert "Kind:         Experiment" in described


def test_schema_violations_are_rejected_naming_the_field(cluster: Cluster, namespace: str) -> None:
    too_small = EXPERIMENT.replace("maxTrials: 12", "maxTrials: 0")
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=too_small)
    assert result.returncode != 0
    assert "spec.budget.maxTrials" in result.stderr
    assert "should be greater than or equal to 1" in result.stderr

    bad_enum = EXPERIMENT.replace("objective: eval_loss", "objective: eval_loss\n  algorithm: sa")
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=bad_enum)
    assert result.returncode != 0
    assert 'spec.algorithm: Unsupported value: "sa"' in result.stderr

    missing = EXPERIMENT.replace("  objective: eval_loss\n", "")
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=missing)
    assert result.returncode != 0
    assert "spec.objective: Required value" in result.stderr

    unknown = EXPERIMENT.replace("maxTrials: 12", "maxTrials: 12, colour: blue")
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=unknown)
    assert result.returncode != 0
    assert 'unknown field "spec.budget.colour"' in result.stderr
    assert cluster.get("experiments", "demo", namespace, GROUP) is None


def test_server_side_dry_run_stores_nothing(cluster: Cluster, namespace: str) -> None:
    out = ok(
        cluster.kubectl("apply", "-n", namespace, "--dry-run=server", "-f", "-", input=EXPERIMENT)
    )
    assert "(server dry run)" in out
    assert cluster.get("experiments", "demo", namespace, GROUP) is None


def test_delete_custom_resource(cluster: Cluster, namespace: str) -> None:
    ok(cluster.kubectl("apply", "-n", namespace, "-f", "-", input=EXPERIMENT))
    assert "deleted" in ok(cluster.kubectl("delete", "-n", namespace, "exp", "demo"))
    assert cluster.get("experiments", "demo", namespace, GROUP) is None
    result = cluster.kubectl("get", "-n", namespace, "exp", "demo")
    assert result.returncode != 0
    assert 'experiments.example.kubetune.dev "demo" not found' in result.stderr


def test_explain_uses_the_crd_schema(cluster: Cluster) -> None:
    out = ok(cluster.kubectl("explain", "experiments.spec.budget"))
    assert "maxTrials" in out and "<integer>" in out
    assert "The metric to optimize." in ok(cluster.kubectl("explain", "exp.spec.objective"))


def test_logs_of_a_pod(cluster: Cluster, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "talker", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "python",
                    "command": ["python", "-c", "print('line one'); print('line two')"],
                }
            ],
        },
    }
    cluster.create(pod)
    cluster.wait_for_pod_phase(namespace, "talker", "Succeeded")
    assert ok(cluster.kubectl("logs", "-n", namespace, "talker")) == "line one\nline two\n"
    assert ok(cluster.kubectl("logs", "-n", namespace, "talker", "--tail=1")) == "line two\n"
    pods = ok(cluster.kubectl("get", "-n", namespace, "pods")).splitlines()
    assert pods[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert pods[1].split()[:4] == ["talker", "0/1", "Completed", "0"]


def test_api_resources_lists_shortnames_and_categories(cluster: Cluster) -> None:
    lines = ok(cluster.kubectl("api-resources")).splitlines()
    experiments = next(line for line in lines if line.startswith("experiments "))
    assert experiments.split() == [
        "experiments",
        "exp",
        "example.kubetune.dev/v1alpha1",
        "true",
        "Experiment",
    ]
    assert any(line.split()[:2] == ["pods", "po"] for line in lines)


def test_create_commands_that_send_protobuf(cluster: Cluster) -> None:
    """kubectl's typed client posts these as application/vnd.kubernetes.protobuf."""
    ok(cluster.kubectl("create", "namespace", "proto"))
    ok(
        cluster.kubectl(
            "create", "-n", "proto", "secret", "generic", "hf", "--from-literal=token=abc"
        )
    )
    ok(cluster.kubectl("create", "-n", "proto", "configmap", "cm", "--from-literal=a=b"))
    ok(cluster.kubectl("create", "-n", "proto", "serviceaccount", "runner"))
    secret = cluster.get("secrets", "hf", "proto")
    assert secret is not None and secret["data"] == {"token": "YWJj"}
    assert secret["type"] == "Opaque"
    assert (cluster.get("configmaps", "cm", "proto") or {}).get("data") == {"a": "b"}
    assert cluster.get("serviceaccounts", "runner", "proto") is not None
    ok(cluster.kubectl("delete", "namespace", "proto"))


def test_get_watch_prints_table_rows(cluster: Cluster, namespace: str) -> None:
    watcher = subprocess.Popen(
        ["kubectl", "get", "pods", "-n", namespace, "-w"],
        env=cluster.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        cluster.wait_for(
            lambda: any(
                "watch=true" in path and namespace in path for _, path, _, _ in cluster.requests()
            )
        )
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "quick", "namespace": namespace},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "m", "image": "x", "command": ["python", "-c", "pass"]}
                    ],
                },
            }
        )
        cluster.wait_for_pod_phase(namespace, "quick", "Succeeded")
        time.sleep(0.5)
    finally:
        watcher.terminate()
        out, _ = watcher.communicate(timeout=10)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert ["quick", "0/1", "Completed", "0"] in [row[:4] for row in rows[1:]]


def test_apply_modifies_a_pod_with_a_strategic_merge_patch(
    cluster: Cluster, namespace: str
) -> None:
    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: ap, labels: {a: '1'}}\nspec:\n"
        "  restartPolicy: Never\n  containers:\n  - name: m\n    image: x\n"
        "    command: [python, -c, 'import time; time.sleep(30)']\n"
        "    env: [{name: A, value: '1'}, {name: B, value: '2'}]\n"
    )
    ok(cluster.kubectl("apply", "-n", namespace, "-f", "-", input=pod))
    changed = pod.replace("{a: '1'}", "{a: '2', b: '3'}").replace("{name: A, value: '1'}, ", "")
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=changed)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    stored = cluster.get("pods", "ap", namespace)
    assert stored is not None
    assert stored["metadata"]["labels"] == {"a": "2", "b": "3"}
    assert stored["spec"]["containers"][0]["env"] == [{"name": "B", "value": "2"}]
    cluster.delete("pods", "ap", namespace, grace_period=0)


def test_unknown_fields_of_built_in_kinds_are_refused(cluster: Cluster, namespace: str) -> None:
    typo = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: typo}\nspec:\n  containers:\n"
        "  - name: m\n    image: x\n    imagePullPolicyy: Always\n"
    )
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=typo)
    assert result.returncode != 0
    assert 'unknown field "spec.containers[0].imagePullPolicyy"' in result.stderr
    assert cluster.get("pods", "typo", namespace) is None
