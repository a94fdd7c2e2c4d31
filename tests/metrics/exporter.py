"""An in-process trial exporter: the series a kubetune trainer serves, on a real HTTP server."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from kubetune import metric_names
from tests.cluster.prometheus import free_port


@dataclass
class TrialExporter:
    """Gauges for several trials of one sweep, labelled like the trainer labels them."""

    registry: CollectorRegistry
    port: int
    namespace: str
    sweep: str
    gauges: dict[str, Gauge]
    tokens: Counter

    def set(self, trial: str, **values: float) -> None:
        for short, value in values.items():
            gauge = self.gauges[metric_names.trial_metric(short)]
            gauge.labels(sweep=self.sweep, trial=trial, namespace=self.namespace).set(value)


@contextmanager
def trial_exporter(namespace: str = "ns", sweep: str = "demo") -> Iterator[TrialExporter]:
    registry = CollectorRegistry()
    labels = list(metric_names.TRIAL_LABELS)
    gauges = {
        name: Gauge(name, f"test series {name}", labels, registry=registry)
        for name in metric_names.TRAINER_GAUGES
    }
    tokens = Counter(metric_names.TOKENS_TOTAL, "tokens", labels, registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield TrialExporter(registry, port, namespace, sweep, gauges, tokens)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
