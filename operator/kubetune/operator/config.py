"""The operator's configuration: command-line options with environment defaults."""

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubetune import conventions
from kubetune.policy.pod_policy import PodPolicy, load_pod_policy

if TYPE_CHECKING:
    from kubetune.metrics.urls import PrometheusUrlPolicy

# Engine calls in flight at once (engine_pool.py). Engine work is CPU-bound under the GIL, so
# more threads add memory (each GP ask its own torch buffers), not throughput. Two, not one:
# a sweep's long ask (a GP at hundreds of trials takes seconds) leaves a thread for the others.
DEFAULT_ENGINE_THREADS = 2


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    default_image: str | None = None
    default_prometheus_url: str | None = None
    # Besides the default URL, the only ones a sweep's spec.metrics.prometheus.url may name
    # (matching rule in kubetune.metrics.urls). Empty: sweeps use the default one only.
    allowed_prometheus_urls: tuple[str, ...] = ()
    metrics_port: int | None = conventions.OPERATOR_METRICS_PORT  # None: do not serve
    # Where /metrics and /healthz listen; the chart may narrow it to the pod IP.
    bind_address: str = conventions.DEFAULT_BIND_ADDRESS
    # Seconds between passes of a sweep with nothing in flight (pod events wake it sooner).
    idle_interval: float = 30.0
    # What trial pods may ask for; every pod the operator builds is checked against it.
    pod_policy: PodPolicy = field(default_factory=PodPolicy)
    # What trainer.nodes trials run as: auto (a JobSet where jobset.x-k8s.io/v1alpha2 is
    # served, else an Indexed Job + headless Service), jobset or job (operator/nodes_shape.py).
    nodes_workload: str = "auto"
    engine_threads: int = DEFAULT_ENGINE_THREADS

    @classmethod
    def from_environment(cls) -> "OperatorConfig":
        """Raises PodPolicyError when KUBETUNE_POD_POLICY cannot be read."""
        policy = os.environ.get(conventions.ENV_POD_POLICY, "").strip()
        return cls(
            namespaces=_listed(conventions.ENV_WATCH_NAMESPACES),
            default_image=os.environ.get(conventions.ENV_DEFAULT_TRAINER_IMAGE) or None,
            default_prometheus_url=os.environ.get(conventions.ENV_DEFAULT_PROMETHEUS_URL) or None,
            bind_address=os.environ.get(conventions.ENV_BIND_ADDRESS)
            or conventions.DEFAULT_BIND_ADDRESS,
            pod_policy=load_pod_policy(policy, f"${conventions.ENV_POD_POLICY}")
            if policy
            else PodPolicy(),
            allowed_prometheus_urls=_listed(conventions.ENV_ALLOWED_PROMETHEUS_URLS),
            engine_threads=_engine_threads(),
        )

    def prometheus_policy(self) -> "PrometheusUrlPolicy":
        """Which Prometheus URLs sweeps may use; UrlRefused names a malformed entry."""
        # Imported here: options.py imports this module and must stay light for --help.
        from kubetune.metrics.urls import PrometheusUrlPolicy

        return PrometheusUrlPolicy.from_settings(
            self.default_prometheus_url, self.allowed_prometheus_urls
        )


def _engine_threads() -> int:
    """$KUBETUNE_ENGINE_THREADS, else the default; ValueError names the variable."""
    raw = os.environ.get(conventions.ENV_ENGINE_THREADS, "").strip()
    if not raw:
        return DEFAULT_ENGINE_THREADS
    return engine_threads(raw, f"${conventions.ENV_ENGINE_THREADS}")


def engine_threads(raw: str, source: str) -> int:
    """A thread count of at least 1; ValueError names where it came from."""
    try:
        threads = int(raw)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ValueError(f"{source}: must be a whole number of at least 1, got {raw!r}")
    return threads


def _listed(variable: str) -> tuple[str, ...]:
    """A comma-separated environment variable as its non-empty items."""
    raw = os.environ.get(variable, "")
    return tuple(item.strip() for item in raw.split(",") if item.strip())
