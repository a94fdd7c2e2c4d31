"""Trial metric sources: direct scrape of /metrics, or Prometheus through its HTTP API.

Both return TrialReading keyed by trial name; a trial with no series yet is simply
missing, while a source that cannot be read raises MetricsUnavailable.
"""

from kubetune.metrics.exposition import parse_exposition
from kubetune.metrics.prometheus import PrometheusSource
from kubetune.metrics.promql import render_template, trial_selector
from kubetune.metrics.scrape import ScrapeSource
from kubetune.metrics.types import (
    MetricsError,
    MetricsSource,
    MetricsUnavailable,
    QueryError,
    TrialReading,
    TrialTarget,
    short_name,
)

__all__ = [
    "MetricsError",
    "MetricsSource",
    "MetricsUnavailable",
    "PrometheusSource",
    "QueryError",
    "ScrapeSource",
    "TrialReading",
    "TrialTarget",
    "parse_exposition",
    "render_template",
    "short_name",
    "trial_selector",
]
