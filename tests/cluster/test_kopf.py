"""A tiny kopf operator (testdata/kopf_operator.py) runs against the test cluster."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cluster import Cluster
from .fixtures import TESTDATA

GROUP = "example.kubetune.dev"
EXPERIMENT = (TESTDATA / "experiment.yaml").read_text()


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """kopf in standalone mode (no peering objects), watching namespace `kopf-test`."""
    cluster.apply_crd(TESTDATA / "experiments-crd.yaml")
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kopf-test"}})
    log = tmp_path_factory.mktemp("kopf") / "kopf.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--standalone",
                "--namespace",
                "kopf-test",
                "--verbose",
                str(TESTDATA / "kopf_operator.py"),
            ],
            env=cluster.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Ready once its watch on our resource is open.
        cluster.wait_for(
            lambda: any(
                "experiments" in path and "watch=true" in path
                for _, path, _, _ in cluster.requests()
            ),
            timeout=30,
            message="kopf watching experiments",
        )
        yield log
    finally:
        process.terminate()
        process.wait(15)
    text = log.read_text()
    assert "Traceback" not in text, text[-4000:]


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    obj = cluster.get("experiments", name, "kopf-test", GROUP) or {}
    found: dict[str, Any] = obj.get("status") or {}
    return found


def test_create_update_delete_with_finalizer(cluster: Cluster, operator: Path) -> None:
    cluster.kubectl("apply", "-n", "kopf-test", "-f", "-", input=EXPERIMENT, check=True)
    cluster.wait_for(
        lambda: status(cluster, "demo").get("phase") == "Created", message="kopf's create handler"
    )
    obj = cluster.get("experiments", "demo", "kopf-test", GROUP)
    assert obj is not None
    assert obj["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    assert status(cluster, "demo")["objective"] == "eval_loss"

    # Kopf posts Events from a background queue, so the status patch can land first: wait.
    uid = obj["metadata"]["uid"]
    cluster.wait_for(
        lambda: any(
            e["reason"] == "Created"
            and e["involvedObject"]["name"] == "demo"
            and e["involvedObject"]["uid"] == uid
            for e in cluster.list_objects("events", "kopf-test")
        ),
        message="kopf's Created Event about demo",
    )

    cluster.kubectl(
        "patch",
        "-n",
        "kopf-test",
        "exp",
        "demo",
        "--type=merge",
        "-p",
        '{"spec":{"budget":{"maxTrials":33}}}',
        check=True,
    )
    cluster.wait_for(
        lambda: status(cluster, "demo").get("maxTrials") == 33, message="kopf's update handler"
    )
    assert status(cluster, "demo")["phase"] == "Updated"

    deleted = cluster.kubectl("delete", "-n", "kopf-test", "exp", "demo", timeout=60)
    assert deleted.returncode == 0, deleted.stderr
    assert cluster.get("configmaps", "deleted-demo", "kopf-test") is not None
    assert cluster.get("experiments", "demo", "kopf-test", GROUP) is None


def test_kopf_survives_410_gone_and_dropped_watches(cluster: Cluster, operator: Path) -> None:
    expired_before = cluster.server.expired_watches
    cluster.compact()  # every resourceVersion kopf holds is now too old
    cluster.faults.drop_watches()
    cluster.wait_for(
        lambda: cluster.server.expired_watches > expired_before,
        message="kopf resuming a watch and getting 410 Gone",
    )
    later = EXPERIMENT.replace("name: demo", "name: after-gone")
    cluster.kubectl("apply", "-n", "kopf-test", "-f", "-", input=later, check=True)
    cluster.wait_for(
        lambda: status(cluster, "after-gone").get("phase") == "Created",
        message="kopf handling a resource created after the 410",
    )
    assert "Restarting the watch-stream" in operator.read_text()
