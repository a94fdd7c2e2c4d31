"""A real Prometheus server (Debian's /usr/bin/prometheus) running given scrape jobs every second."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.cluster.prometheus import Prometheus


@contextmanager
def prometheus_server(workdir: Path, jobs: list[dict[str, Any]]) -> Iterator[str]:
    """Start Prometheus on a free port; yields its base URL once it is ready."""
    with Prometheus(workdir, extra_scrape_configs=jobs) as server:
        yield server.url
