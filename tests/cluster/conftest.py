from tests.cluster.fixtures import cluster, faults, namespace, prometheus  # noqa: F401
