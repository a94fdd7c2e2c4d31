"""The operator's configuration: command-line options with environment defaults."""

import os
from dataclasses import dataclass

from kubetune import conventions


@dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    default_image: str | None = None
    default_prometheus_url: str | None = None
    metrics_port: int | None = conventions.OPERATOR_METRICS_PORT  # None: do not serve
    # Seconds between passes of a sweep with nothing in flight (pod events wake it sooner).
    idle_interval: float = 30.0

    @classmethod
    def from_environment(cls) -> "OperatorConfig":
        raw = os.environ.get(conventions.ENV_WATCH_NAMESPACES, "")
        return cls(
            namespaces=tuple(n.strip() for n in raw.split(",") if n.strip()),
            default_image=os.environ.get(conventions.ENV_DEFAULT_TRAINER_IMAGE) or None,
            default_prometheus_url=os.environ.get(conventions.ENV_DEFAULT_PROMETHEUS_URL) or None,
        )
