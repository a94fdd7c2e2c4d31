"""One scraped tiny sweep per session, shared by the live query and the PNG tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chart.live_run import ScrapedRun, scraped_run


@pytest.fixture(scope="session")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScrapedRun]:
    workdir: Path = tmp_path_factory.mktemp("scraped-run")
    with scraped_run(workdir) as run:
        yield run


# The simulated API server and kubelet (tests/cluster), for the kubectl apply tests.
from tests.cluster.fixtures import cluster, namespace  # noqa: E402, F401
