"""The operator's own Prometheus metrics, served on conventions.OPERATOR_METRICS_PORT.

Names come only from kubetune.metric_names (the Grafana dashboards read them there too).
Each OperatorMetrics owns its registry, so tests and the benchmark can hold several
without clashing with the process-wide default registry.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from kubetune import metric_names
from kubetune.conventions import OPERATOR_METRICS_PORT
from kubetune.spec.status import Phase, TrialCounts

PHASES: tuple[Phase, ...] = ("Pending", "Running", "Succeeded", "Failed", "Suspended", "Invalid")
TRIAL_STATES = ("pending", "queued", "running", "succeeded", "pruned", "failed")

# Turnover and reconcile are sub-second when healthy; the tail buckets show a stuck loop.
_FAST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class OperatorMetrics:
    """Gauges of sweeps and trials, latency histograms and an error counter."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.sweeps = Gauge(
            metric_names.SWEEPS, "Sweeps by phase.", ["phase"], registry=self.registry
        )
        self.trials = Gauge(
            metric_names.TRIALS,
            "Trials of each sweep by state.",
            ["namespace", "sweep", "state"],
            registry=self.registry,
        )
        self.best_value = Gauge(
            metric_names.SWEEP_BEST_VALUE,
            "Best objective value of each sweep so far.",
            ["namespace", "sweep"],
            registry=self.registry,
        )
        self.gpu_hours = Gauge(
            metric_names.SWEEP_GPU_HOURS,
            "GPU-hours each sweep's trials spent (GPUs requested x running time, ended attempts).",
            ["namespace", "sweep"],
            registry=self.registry,
        )
        self.turnover = Histogram(
            metric_names.TRIAL_TURNOVER_SECONDS,
            "Seconds from a trial pod finishing to the next trial pod of its sweep being created.",
            buckets=_FAST_BUCKETS,
            registry=self.registry,
        )
        self.reconcile = Histogram(
            metric_names.RECONCILE_SECONDS,
            "Seconds one sweep reconcile takes.",
            buckets=_FAST_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            metric_names.RECONCILE_ERRORS,
            "Reconciles that failed, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.suggestion = Histogram(
            metric_names.SUGGESTION_SECONDS,
            "Seconds the search algorithm takes to propose one batch of trials.",
            buckets=_FAST_BUCKETS,
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._phases: dict[tuple[str, str], Phase] = {}
        for phase in PHASES:
            self.sweeps.labels(phase=phase).set(0)

    def set_sweep(
        self,
        namespace: str,
        name: str,
        phase: Phase,
        counts: TrialCounts,
        best: float | None,
        gpu_hours: float | None = None,
    ) -> None:
        """Record one sweep's current phase, trial counts, best value and GPU-hours spent."""
        with self._lock:
            self._phases[(namespace, name)] = phase
            self._refresh_phases()
        for state in TRIAL_STATES:
            self.trials.labels(namespace=namespace, sweep=name, state=state).set(
                getattr(counts, state)
            )
        if best is not None:
            self.best_value.labels(namespace=namespace, sweep=name).set(best)
        if gpu_hours is not None:
            self.gpu_hours.labels(namespace=namespace, sweep=name).set(gpu_hours)

    def forget_sweep(self, namespace: str, name: str) -> None:
        """Drop a deleted sweep's series so gauges do not report ghosts."""
        with self._lock:
            self._phases.pop((namespace, name), None)
            self._refresh_phases()
        for state in TRIAL_STATES:
            _remove(self.trials, namespace, name, state)
        _remove(self.best_value, namespace, name)
        _remove(self.gpu_hours, namespace, name)

    def _refresh_phases(self) -> None:
        totals = dict.fromkeys(PHASES, 0)
        for phase in self._phases.values():
            totals[phase] += 1
        for phase, count in totals.items():
            self.sweeps.labels(phase=phase).set(count)

    @contextmanager
    def time_reconcile(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.reconcile.observe(time.perf_counter() - started)

    def error(self, reason: str) -> None:
        self.errors.labels(reason=reason).inc()

    def serve(self, port: int = OPERATOR_METRICS_PORT, addr: str = "0.0.0.0") -> None:
        """Serve /metrics from a background thread."""
        start_http_server(port, addr=addr, registry=self.registry)


def _remove(metric: Gauge, *labels: str) -> None:
    with suppress(KeyError):
        metric.remove(*labels)


# The one the running operator uses; handlers import it from here.
METRICS = OperatorMetrics()
