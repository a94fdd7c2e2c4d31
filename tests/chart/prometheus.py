"""A real Prometheus (the test cluster's fixture) with given scrape jobs, and a small query client."""

import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.cluster.prometheus import Prometheus as PrometheusServer

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@dataclass(frozen=True)
class ScrapeJob:
    name: str
    targets: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()
    honor_labels: bool = False
    # Labels of each target, in the order of targets (as relabelling gives each pod its own).
    target_labels: tuple[tuple[tuple[str, str], ...], ...] = ()

    def config(self) -> dict[str, Any]:
        groups = (
            [
                {"targets": [target], "labels": {**dict(self.labels), **dict(own)}}
                for target, own in zip(self.targets, self.target_labels, strict=True)
            ]
            if self.target_labels
            else [{"targets": list(self.targets), "labels": dict(self.labels)}]
        )
        return {
            "job_name": self.name,
            "honor_labels": self.honor_labels,
            "static_configs": groups,
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
    with PrometheusServer(workdir, extra_scrape_configs=[job.config() for job in jobs]) as server:
        yield Prometheus(server.url)
