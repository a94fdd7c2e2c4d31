"""Every dashboard and alert query, run against a real Prometheus that scraped a tiny sweep.

A panel whose query returns nothing here would be empty in Grafana: that fails. Exempt,
and only on a machine without a CUDA GPU: the DCGM panels (dcgm-exporter needs an NVIDIA
GPU) and GPU memory per trial (the trainer sets that gauge only on CUDA devices).
Alert conditions need a failure state this healthy run does not have, so each alert's full
expression must evaluate without error, and every series it selects, with its matchers,
must have data.
"""

import json
import re
from typing import Any

import pytest
import torch

from kubetune import conventions
from tests.chart.live_run import NAMESPACE, OPERATOR_JOB, OPERATOR_NAMESPACE, SWEEP, ScrapedRun
from tests.chart.prometheus import finite_values
from tests.chart.promql import (
    PanelQuery,
    panel_queries,
    substitute,
    variable_queries,
    vector_selectors,
)
from tests.chart.rendering import CHART, combination_values, one, render
from tests.chart.test_dashboards import DCGM_PREFIX, dcgm_panels

pytestmark = pytest.mark.slow

DASHBOARDS = {
    p.stem: json.loads(p.read_text()) for p in sorted((CHART / "dashboards").glob("*.json"))
}
QUERIES = [q for d in DASHBOARDS.values() for q in panel_queries(d)]
OPTIONAL = {(d["title"], title) for d in DASHBOARDS.values() for title in dcgm_panels(d)}
GPU_MEMORY = ("kubetune / Sweep", "GPU memory per trial")
EXEMPT = OPTIONAL | (set() if torch.cuda.is_available() else {GPU_MEMORY})
REQUIRED = [q for q in QUERIES if (q.dashboard, q.panel) not in EXEMPT]
RULES = one(render(combination_values(frozenset({"prometheusRule"}), "cluster")), "PrometheusRule")
ALERTS = {r["alert"]: r["expr"] for g in RULES["spec"]["groups"] for r in g["rules"]}


def run_query(run: ScrapedRun, query: PanelQuery) -> list[dict[str, Any]]:
    expr = substitute(query.expr, run.variables())
    if query.instant:
        return run.prometheus.query(expr, run.end)
    return run.prometheus.query_range(expr, run.start, run.end, 1)


def test_the_run_was_real(scraped: ScrapedRun) -> None:
    first, second = scraped.trials
    assert scraped.exit_codes[first] == conventions.EXIT_OK
    # The second trial was stopped part way, as a pruned trial is (SIGTERM).
    assert scraped.exit_codes[second] != conventions.EXIT_OK


def test_gpu_memory_is_exempt_only_for_want_of_a_gpu(scraped: ScrapedRun) -> None:
    (query,) = [q for q in QUERIES if (q.dashboard, q.panel) == GPU_MEMORY]
    result = run_query(scraped, query)
    if torch.cuda.is_available():
        assert finite_values(result)
    else:
        assert result == [], "the trainer reports GPU memory without a GPU: make the panel required"


def test_only_dcgm_panels_are_optional() -> None:
    assert {panel for _, panel in OPTIONAL} == {
        "GPU utilisation per trial (DCGM)",
        "GPU framebuffer used per trial (DCGM)",
    }
    for query in QUERIES:
        if (query.dashboard, query.panel) in OPTIONAL:
            assert all(s.metric.startswith(DCGM_PREFIX) for s in vector_selectors(query.expr))


@pytest.mark.parametrize("query", REQUIRED, ids=[q.label for q in REQUIRED])
def test_panel_query_returns_data(scraped: ScrapedRun, query: PanelQuery) -> None:
    result = run_query(scraped, query)
    assert finite_values(result), f"{query.label} is empty: {query.expr}"


def test_pruned_trial_is_visible(scraped: ScrapedRun) -> None:
    (query,) = [q for q in REQUIRED if q.panel.startswith("Objective") and q.ref_id == "B"]
    stopped = {item["metric"]["trial"] for item in run_query(scraped, query)}
    assert stopped == {scraped.trials[1]}


def test_trial_table_has_parameters_per_trial(scraped: ScrapedRun) -> None:
    (query,) = [q for q in REQUIRED if q.panel == "Trials and their parameters" and q.ref_id == "A"]
    rows = {item["metric"]["trial"]: item["metric"] for item in run_query(scraped, query)}
    assert set(rows) == set(scraped.trials)
    assert all("learning_rate" in labels for labels in rows.values())


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_variable_queries_offer_the_run(scraped: ScrapedRun, name: str) -> None:
    expected = {"namespace": NAMESPACE, "sweep": SWEEP, "job": OPERATOR_JOB}
    for variable, (selector, label) in variable_queries(DASHBOARDS[name]).items():
        selector = substitute(selector, scraped.variables())
        values = scraped.prometheus.label_values(label, selector, scraped.start, scraped.end)
        assert expected[variable] in values, f"{name}: ${variable} offers {values}"


def test_rendered_operator_job_matches_the_run() -> None:
    assert one(render(), "Service")["metadata"]["name"] == OPERATOR_JOB
    assert RULES["metadata"]["namespace"] == OPERATOR_NAMESPACE


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_alert_evaluates_and_its_series_exist(scraped: ScrapedRun, alert: str) -> None:
    expr = ALERTS[alert]
    scraped.prometheus.query(expr, scraped.end)  # raises on any PromQL error
    for selector in vector_selectors(expr):
        result = scraped.prometheus.query_range(str(selector), scraped.start, scraped.end, 1)
        assert finite_values(result), f"{alert}: {selector} has no data"


def with_bool_threshold(expr: str) -> str:
    """The condition as a 0/1 value per series: `x > 0.5` becomes `x > bool 0.5`."""
    probe, count = re.subn(r"(==|!=|>=|<=|>|<)(?=\s)", r"\1 bool", expr, count=1)
    assert count == 1, f"no threshold in {expr}"
    return probe


def _mid_run(run: ScrapedRun) -> float:
    """A moment when the operator counted both trials running and both reported metrics."""
    both = (
        "count by (namespace, sweep) (kubetune_trial_step) == 2 and on (namespace, sweep) "
        'kubetune_trials{state="running"} == 2'
    )
    (series,) = run.prometheus.query_range(both, run.start, run.end, 1)
    return float(series["values"][len(series["values"]) // 2][0])


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_alert_condition_without_threshold_sees_the_running_sweep(
    scraped: ScrapedRun, alert: str
) -> None:
    """Mid-run, each condition yields a series for the sweep or operator, and it is false."""
    result = scraped.prometheus.query(with_bool_threshold(ALERTS[alert]), _mid_run(scraped))
    assert finite_values(result) and set(finite_values(result)) == {0.0}, result
    if alert in ("KubetuneTrialFailureRatioHigh", "KubetuneTrialMetricsMissing"):
        # Operator and trainer series joined on the sweep's namespace and name.
        assert [(r["metric"]["namespace"], r["metric"]["sweep"]) for r in result] == [
            (NAMESPACE, SWEEP)
        ]


def test_healthy_run_fires_no_alert_but_operator_down_would(scraped: ScrapedRun) -> None:
    """Conditions hold their thresholds: a healthy run triggers none of them."""
    for alert, expr in ALERTS.items():
        assert scraped.prometheus.query(expr, scraped.end) == [], alert
    # With the threshold flipped, the operator-down condition sees the live target.
    up = ALERTS["KubetuneOperatorDown"].split("\n")[0].replace("== 0", "== 1")
    assert finite_values(scraped.prometheus.query(up, scraped.end)) == [1.0]
