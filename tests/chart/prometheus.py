"""A real Prometheus (Debian's /usr/bin/prometheus) with given scrape jobs, and a small query client."""

import math
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()
    honor_labels: bool = False

    def config(self) -> dict[str, Any]:
        return {
            "job_name": self.name,
            "honor_labels": self.honor_labels,
            "static_configs": [{"targets": list(self.targets), "labels": dict(self.labels)}],
        }


class PromQLError(RuntimeError):
    pass


@dataclass(frozen=True)
class Prometheus:
    url: str

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=30)
        body = response.json()
        if body.get("status") != "success":
            raise PromQLError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", {"query": expr, "time": at})
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self._get(
            "/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step}
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    def label_values(self, label: str, selector: str, start: float, end: float) -> list[str]:
        params = {"match[]": selector, "start": start, "end": end}
        values: list[str] = self._get(f"/api/v1/label/{label}/values", params)
        return values

    def targets_up(self) -> dict[str, str]:
        data = self._get("/api/v1/targets", {})
        return {t["scrapeUrl"]: t["health"] for t in data["activeTargets"]}


def finite_values(series: list[dict[str, Any]]) -> list[float]:
    """All finite sample values of a query result, vector or matrix."""
    values: list[float] = []
    for item in series:
        samples = item.get("values") or ([item["value"]] if "value" in item else [])
        values.extend(float(v) for _, v in samples if math.isfinite(float(v)))
    return values


@contextmanager
def prometheus_server(workdir: Path, jobs: list[ScrapeJob]) -> Iterator[Prometheus]:
    """Start Prometheus on a free port scraping every second; yields it once ready."""
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [job.config() for job in jobs],
            }
        )
    )
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(process, url, log_path)
            yield Prometheus(url)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("prometheus did not become ready in 60s")
        time.sleep(0.2)
