"""The trial's Prometheus metrics and the /metrics server that counts its scrapes.

Series names come from kubetune.metric_names only, on a private registry (no
process or platform collectors: they would add names nobody declared). The server
counts GETs of /metrics so the end of a run can wait for one scrape that saw the
final values: a short trial is never lost between two Prometheus scrapes.
"""

import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from kubetune import metric_names as names
from kubetune_trainer.config import Identity
from kubetune_trainer.log import log

_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_RESERVED_INFO_LABELS = frozenset(names.TRIAL_LABELS)

# A `<name>_created` series per counter would be a name not in metric_names.
prometheus_client.disable_created_metrics()


def info_labels(params: dict[str, Any]) -> dict[str, str]:
    """Parameters as Prometheus label names and string values."""
    labels: dict[str, str] = {}
    for name, value in sorted(params.items()):
        label = _LABEL.sub("_", name)
        if label[:1].isdigit() or label.startswith("__"):
            label = f"p_{label.lstrip('_')}"
        if label in _RESERVED_INFO_LABELS:
            label = f"param_{label}"
        labels[label] = _label_value(value)
    return labels


def _label_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest round-tripping form: 0.0001 stays 0.0001
    return value if isinstance(value, str) else str(value)


class LazyGauge:
    """A labelled gauge whose series appears only once it has a value.

    An eval_loss of 0 exported before the first evaluation would look like a perfect
    trial to a pruner; no sample at all is the honest answer.
    """

    def __init__(self, gauge: Gauge, labels: dict[str, str]) -> None:
        self._gauge = gauge
        self._labels = labels

    def set(self, value: float) -> None:
        self._gauge.labels(**self._labels).set(value)


class TrainerMetrics:
    """The gauges and counters one trial exposes, already bound to its labels."""

    def __init__(self, identity: Identity, params: dict[str, Any]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = identity.labels()
        label_names = list(names.TRIAL_LABELS)

        def gauge(name: str, doc: str) -> LazyGauge:
            return LazyGauge(Gauge(name, doc, label_names, registry=self.registry), labels)

        self.train_loss = gauge(names.TRAIN_LOSS, "Training loss of the last optimizer step.")
        self.eval_loss = gauge(names.EVAL_LOSS, "Loss on the eval split at the last evaluation.")
        self.eval_accuracy = gauge(names.EVAL_ACCURACY, "Exact-match accuracy on the eval split.")
        self.learning_rate = gauge(names.LEARNING_RATE, "Learning rate of the last step.")
        self.grad_norm = gauge(names.GRAD_NORM, "Gradient norm before clipping.")
        self.step = gauge(names.STEP, "Optimizer steps done.")
        self.max_steps = gauge(names.MAX_STEPS, "Optimizer steps planned.")
        self.tokens_per_second = gauge(names.TOKENS_PER_SECOND, "Training tokens per second.")
        self.eval_step = gauge(names.EVAL_STEP, "Step at which the eval_* values were measured.")
        self.done = gauge(names.TRIAL_DONE, "1 once the final values are set.")
        self.gpu_memory = gauge(names.GPU_MEMORY_BYTES, "Peak GPU memory allocated.")
        self.tokens = Counter(
            names.TOKENS_TOTAL, "Training tokens processed.", label_names, registry=self.registry
        ).labels(**labels)
        extra = info_labels(params)
        info = Gauge(
            names.TRIAL_INFO,
            "Always 1; the trial's parameters as labels.",
            [*label_names, *extra],
            registry=self.registry,
        )
        info.labels(**labels, **extra).set(1)
        self.done.set(0)
        self.step.set(0)
        self._final = threading.Event()
        self._final_scraped = threading.Event()
        # The values a sweep's objective may name; report() refuses any other, so the
        # trainer cannot drift from the list `kubetune validate` checks objectives against.
        gauges = {
            names.TRAIN_LOSS: self.train_loss,
            names.EVAL_LOSS: self.eval_loss,
            names.EVAL_ACCURACY: self.eval_accuracy,
            names.LEARNING_RATE: self.learning_rate,
            names.GRAD_NORM: self.grad_norm,
            names.TOKENS_PER_SECOND: self.tokens_per_second,
        }
        reportable = {s for series in names.TRAINER_OBJECTIVES.values() for s in series}
        self._reported = {names.short_name(s): gauges[s] for s in sorted(reportable)}

    def report(self, values: Mapping[str, float]) -> None:
        """Set the objective-able gauges by short name (eval_loss, train_loss, ...)."""
        for name, value in values.items():
            gauge = self._reported.get(name)
            if gauge is None:
                raise KeyError(f"{name} is not in metric_names.TRAINER_OBJECTIVES")
            gauge.set(value)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # Scrape accounting: did a scrape that was rendered after the final update go out?
    @property
    def is_final(self) -> bool:
        return self._final.is_set()

    def count_scrape(self, rendered_after_final: bool) -> None:
        """Called once a scrape's response is sent, with is_final as read before rendering."""
        if rendered_after_final:
            self._final_scraped.set()

    def mark_final(self) -> None:
        """The final values are set; scrapes rendered from now on carry them."""
        self.done.set(1)
        self._final.set()

    def wait_for_final_scrape(self, timeout: float) -> bool:
        """True once a scrape rendered after mark_final was sent; False after `timeout` s."""
        return self._final_scraped.wait(timeout)


class _Handler(BaseHTTPRequestHandler):
    metrics: TrainerMetrics  # set on the per-server subclass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            # Read the flag before rendering, report after sending: only a response that
            # carries the final values, and reached the scraper, ends the final wait.
            after_final = self.metrics.is_final
            body = self.metrics.exposition()
            self._send(200, CONTENT_TYPE_LATEST, body)
            self.metrics.count_scrape(after_final)
        elif path in ("/healthz", "/"):
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape would drown the training log


class MetricsServer:
    """Serves /metrics from a daemon thread; port 0 picks a free port."""

    def __init__(self, metrics: TrainerMetrics, addr: str, port: int) -> None:
        handler = type("TrialMetricsHandler", (_Handler,), {"metrics": metrics})
        self._server = ThreadingHTTPServer((addr, port), handler)
        self._server.daemon_threads = True
        self.host = str(addr)
        self.port: int = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kubetune-metrics", daemon=True
        )

    def start(self) -> "MetricsServer":
        self._thread.start()
        log.info(f"metrics on http://{self.host}:{self.port}/metrics")
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
