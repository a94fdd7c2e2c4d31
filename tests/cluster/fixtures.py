"""pytest fixtures for the test cluster. Import them into a conftest:

from tests.cluster.fixtures import cluster, namespace, prometheus  # noqa: F401
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import Cluster
from .faults import Faults
from .prometheus import PROMETHEUS_BIN, Prometheus

TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster (API server + kubelet with node `node-1`, 8 GPUs) per test module.

    Starting takes milliseconds. At teardown it fails the module's last test if the
    simulation itself raised an unexpected error while serving any request.
    """
    with Cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running
        assert not running.internal_errors, "\n".join(running.internal_errors)


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, so tests sharing a module's cluster do not interfere."""
    stem = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    cluster.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    cluster.delete("namespaces", name, namespace="")


@pytest.fixture
def faults(cluster: Cluster) -> Iterator[Faults]:
    """The cluster's fault injection hook, reset (and counters cleared) around the test."""
    cluster.faults.reset()
    yield cluster.faults
    cluster.faults.reset()


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """A real Prometheus discovering the cluster's trial pods, scraping every second."""
    if shutil.which(PROMETHEUS_BIN) is None:
        pytest.fail("prometheus is not installed: run scripts/system-deps.sh")
    with Prometheus(tmp_path_factory.mktemp("prometheus"), cluster) as running:
        yield running
