from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.cluster import Cluster
from tests.cluster.fixtures import cluster, faults, namespace, prometheus  # noqa: F401

from .runner import InProcessOperator, running_trainer_operator

CRD = Path(__file__).resolve().parents[2] / "crds" / "hyperparametersweeps.kubetune.dev.yaml"


@pytest.fixture(scope="module")
def crd(cluster: Cluster) -> Cluster:  # noqa: F811
    cluster.apply_crd(CRD)
    return cluster


@pytest.fixture(scope="module")
def operator(crd: Cluster) -> Iterator[InProcessOperator]:
    with InProcessOperator(crd.kubeconfig) as running:
        yield running


@pytest.fixture(scope="module")
def trainer_operator(crd: Cluster) -> Iterator[InProcessOperator]:
    with running_trainer_operator(crd) as running:
        yield running
