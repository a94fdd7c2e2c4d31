"""A real Prometheus server (Debian's /usr/bin/prometheus) scraping given targets every second."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.cluster.prometheus import Prometheus


@contextmanager
def prometheus_server(workdir: Path, targets: list[str]) -> Iterator[str]:
    """Start Prometheus on a free port; yields its base URL once it is ready."""
    with Prometheus(workdir, static_targets={"trials": targets}) as server:
        yield server.url
