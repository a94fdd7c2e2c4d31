"""In-process trial exporters: the series kubetune trainers serve, one real HTTP server per
trial (as each trial is its own pod), and the scrape job a real Prometheus reads them with."""

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from kubetune import metric_names
from tests.cluster.prometheus import free_port


@dataclass
class _Endpoint:
    port: int
    gauges: dict[str, Gauge]
    tokens: Counter


@dataclass
class TrialExporter:
    """Trials of one namespace, each on its own port, labelled as the trainer labels them."""

    namespace: str
    endpoints: dict[str, _Endpoint]

    def set(self, trial: str, **values: float) -> None:
        endpoint = self.endpoints[trial]
        for short, value in values.items():
            gauge = endpoint.gauges[metric_names.trial_metric(short)]
            gauge.labels(**self._labels(trial)).set(value)

    def tokens(self, trial: str) -> Any:
        return self.endpoints[trial].tokens.labels(**self._labels(trial))

    def port(self, trial: str) -> int:
        return self.endpoints[trial].port

    def scrape_job(self, job: str = "kubetune-trials") -> dict[str, Any]:
        """What the chart's trial job yields after relabelling: one target per trial pod,
        with namespace, sweep, trial and pod from the pod's metadata (here: static labels),
        and honor_labels false so the trainer's own labels cannot override them."""
        return {
            "job_name": job,
            "honor_labels": False,
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{endpoint.port}"],
                    "labels": {
                        "namespace": self.namespace,
                        "sweep": _sweep_of(trial),
                        "trial": trial,
                        "pod": trial,
                    },
                }
                for trial, endpoint in self.endpoints.items()
            ],
        }

    def _labels(self, trial: str) -> dict[str, str]:
        return {"sweep": _sweep_of(trial), "trial": trial, "namespace": self.namespace}


def _sweep_of(trial: str) -> str:
    return trial.rsplit("-t", 1)[0]


@contextmanager
def trial_exporter(
    namespace: str = "ns", trials: Sequence[str] = ("demo-t0000",)
) -> Iterator[TrialExporter]:
    labels = list(metric_names.TRIAL_LABELS)
    with ExitStack() as stack:
        endpoints = {}
        for trial in trials:
            registry = CollectorRegistry()
            gauges = {
                name: Gauge(name, f"test series {name}", labels, registry=registry)
                for name in metric_names.TRAINER_GAUGES
            }
            tokens = Counter(metric_names.TOKENS_TOTAL, "tokens", labels, registry=registry)
            port = free_port()
            server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)

            def stop(server: Any = server, thread: Any = thread) -> None:
                server.shutdown()
                server.server_close()
                thread.join(timeout=5)

            stack.callback(stop)
            endpoints[trial] = _Endpoint(port, gauges, tokens)
        yield TrialExporter(namespace, endpoints)
