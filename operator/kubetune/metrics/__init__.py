"""Trial metric sources: direct scrape of /metrics, or Prometheus through its HTTP API.

Both return TrialReading keyed by trial name; a trial with no series yet is simply
missing, while a source that cannot be read raises MetricsUnavailable.
"""

from kubetune.metrics.exposition import parse_exposition
from kubetune.metrics.prometheus import PrometheusSource
from kubetune.metrics.promql import render_template, trial_selector
from kubetune.metrics.scrape import ScrapeSource
from kubetune.metrics.types import (
    MalformedAnswer,
    MetricsError,
    MetricsSource,
    MetricsUnavailable,
    QueryError,
    TrialReading,
    TrialTarget,
    short_name,
)
from kubetune.metrics.urls import BaseUrl, PrometheusUrlPolicy, UrlRefused, parse_base_url

__all__ = [
    "BaseUrl",
    "MalformedAnswer",
    "MetricsError",
    "MetricsSource",
    "MetricsUnavailable",
    "PrometheusSource",
    "PrometheusUrlPolicy",
    "QueryError",
    "ScrapeSource",
    "TrialReading",
    "TrialTarget",
    "UrlRefused",
    "parse_base_url",
    "parse_exposition",
    "render_template",
    "short_name",
    "trial_selector",
]
