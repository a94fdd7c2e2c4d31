"""A real Prometheus server (Debian's /usr/bin/prometheus) for tests.

It discovers trial pods of the simulated cluster (through the pod discovery bridge, with the
labels and relabelling of Kubernetes SD role pod) and can scrape extra static targets.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from kubetune import conventions

from .cluster import Cluster
from .pod_discovery import PodDiscovery, sanitize
from .processes import die_with_parent

PROMETHEUS_BIN = "prometheus"
SWEEP_LABEL_META = "__meta_kubernetes_pod_label_" + sanitize(conventions.LABEL_SWEEP)
TRIAL_LABEL_META = "__meta_kubernetes_pod_label_" + sanitize(conventions.LABEL_TRIAL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def trial_relabel_configs() -> list[dict[str, Any]]:
    """Relabelling for Kubernetes SD (role pod): pods labelled kubetune.dev/sweep, on the
    container port named `metrics` or the port in annotation prometheus.io/port; running
    pods only; target labels sweep, trial, namespace and pod."""
    return [
        {"source_labels": [SWEEP_LABEL_META], "regex": ".+", "action": "keep"},
        {
            "source_labels": ["__meta_kubernetes_pod_phase"],
            "regex": "Succeeded|Failed",
            "action": "drop",
        },
        {
            "source_labels": [
                "__meta_kubernetes_pod_container_port_name",
                "__meta_kubernetes_pod_annotation_prometheus_io_port",
            ],
            "regex": "metrics;.*|.*;[0-9]+",
            "action": "keep",
        },
        {
            "source_labels": [
                "__meta_kubernetes_pod_ip",
                "__meta_kubernetes_pod_annotation_prometheus_io_port",
            ],
            "regex": "(.+);([0-9]+)",
            "target_label": "__address__",
            "replacement": "$1:$2",
        },
        {"source_labels": [SWEEP_LABEL_META], "target_label": "sweep"},
        {"source_labels": [TRIAL_LABEL_META], "target_label": "trial"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]


def trial_pods_job(discovery_url: str, job: str = "kubetune-trials") -> dict[str, Any]:
    """The scrape job: HTTP SD from the pod discovery bridge (see pod_discovery.py for why
    not kubernetes_sd_configs), refreshed every second, then the production relabelling.

    honor_labels false, as in the chart: sweep, trial, namespace and pod come from the pod's
    metadata; labels a pod exposes under those names are kept as exported_<name>."""
    return {
        "job_name": job,
        "honor_labels": False,
        "http_sd_configs": [{"url": discovery_url, "refresh_interval": "1s"}],
        "relabel_configs": trial_relabel_configs(),
    }


class Prometheus:
    """A Prometheus process with a generated config, on a free port with a temporary TSDB."""

    def __init__(
        self,
        workdir: Path,
        cluster: Cluster | None = None,
        *,
        static_targets: dict[str, list[str]] | None = None,
        extra_scrape_configs: list[dict[str, Any]] | None = None,
        scrape_interval: str = "1s",
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cluster = cluster
        self.static_targets = dict(static_targets or {})
        self.extra_scrape_configs = list(extra_scrape_configs or [])
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.discovery = PodDiscovery(cluster) if cluster is not None else None
        self.config_file = self.workdir / "prometheus.yml"
        self.log_file = self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        jobs: list[dict[str, Any]] = []
        if self.discovery is not None:
            jobs.append(trial_pods_job(self.discovery.url))
        for job, targets in self.static_targets.items():
            jobs.append(
                {"job_name": job, "honor_labels": True, "static_configs": [{"targets": targets}]}
            )
        jobs += self.extra_scrape_configs
        return {
            "global": {
                "scrape_interval": self.scrape_interval,
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": jobs,
        }

    def start(self, timeout: float = 30) -> Prometheus:
        if self.discovery is not None:
            self.discovery.start()
        binary = shutil.which(PROMETHEUS_BIN) or "/usr/bin/prometheus"
        self.config_file.write_text(yaml.safe_dump(self.config()))
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.config_file}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    "--log.level=info",
                ],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_file.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError("prometheus did not become ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.discovery is not None and self.discovery.port:
            self.discovery.stop()

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_static_targets(self, job: str, targets: list[str]) -> None:
        """Scrape more endpoints (e.g. the operator's /metrics); reloads the running server."""
        self.static_targets[job] = list(targets)
        self.reload()

    def reload(self) -> None:
        self.config_file.write_text(yaml.safe_dump(self.config()))
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def _get(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=10) as r:
            body = json.loads(r.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus {path}: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant vector result: [{"metric": {...}, "value": [ts, "v"]}, ...]."""
        result: list[dict[str, Any]] = self._get("/api/v1/query", query=promql)["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        active: list[dict[str, Any]] = self._get("/api/v1/targets")["activeTargets"]
        return active

    def wait_for(self, promql: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Poll the query until it returns at least one series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no series for {promql!r} after {timeout}s; targets: {self.targets()}"
                )
            time.sleep(0.2)
