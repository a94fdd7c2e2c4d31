"""The Grafana dashboards as files: valid JSON, unique ids, the datasource variable, known metrics."""

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune import metric_names
from tests.chart.promql import (
    iter_panels,
    panel_queries,
    substitute,
    variable_queries,
    vector_selectors,
)
from tests.chart.rendering import CHART

DASHBOARDS = sorted((CHART / "dashboards").glob("*.json"))
DATASOURCE = "${datasource}"
HISTOGRAMS = frozenset(
    {
        metric_names.TRIAL_TURNOVER_SECONDS,
        metric_names.RECONCILE_SECONDS,
        metric_names.SUGGESTION_SECONDS,
    }
)
# Series kubetune does not emit: Prometheus' own, and NVIDIA dcgm-exporter's (optional row).
EXTERNAL = frozenset({"up"})
DCGM_PREFIX = "DCGM_FI_"
DCGM_ROW = "GPU (optional: needs dcgm-exporter)"


def declared_names() -> set[str]:
    """Every series name metric_names declares, with the _bucket/_sum/_count of histograms."""
    names = {
        value
        for key, value in vars(metric_names).items()
        if key.isupper() and isinstance(value, str) and value.startswith("kubetune_")
    }
    names.discard(metric_names.TRIAL_PREFIX)
    names -= HISTOGRAMS  # a histogram is only ever queried through its three series
    names |= {h + suffix for h in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
    return names


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def dcgm_panels(dashboard: dict[str, Any]) -> set[str]:
    rows = [p for p in dashboard["panels"] if p["type"] == "row" and p["title"] == DCGM_ROW]
    return {panel["title"] for row in rows for panel in row.get("panels", [])}


def test_there_are_the_two_dashboards() -> None:
    assert [p.name for p in DASHBOARDS] == ["operator.json", "sweep.json"]
    uids = [load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_structure(path: Path) -> None:
    dashboard = load(path)
    ids = [panel["id"] for panel in iter_panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {path.name}"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in iter_panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == DATASOURCE, panel["title"]
        assert panel["targets"], f"panel {panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == DATASOURCE, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == DATASOURCE


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_metric_is_declared_in_metric_names(path: Path) -> None:
    dashboard = load(path)
    declared = declared_names()
    optional = dcgm_panels(dashboard)
    exprs = [(q.panel, q.expr) for q in panel_queries(dashboard)]
    exprs += [(name, sel) for name, (sel, _) in variable_queries(dashboard).items()]
    for where, expr in exprs:
        for selector in vector_selectors(substitute(expr, {"__rate_interval": "1m"})):
            name = selector.metric
            if name.startswith(DCGM_PREFIX):
                assert where in optional, f"{where}: DCGM series outside the optional row"
            elif name not in EXTERNAL:
                assert name in declared, f"{path.name} / {where}: {name} is not in metric_names"


def test_sweep_dashboard_has_the_issue_panels() -> None:
    dashboard = load(CHART / "dashboards" / "sweep.json")
    variables = [v["name"] for v in dashboard["templating"]["list"]]
    assert variables == ["datasource", "namespace", "sweep"]
    titles = {p["title"] for p in iter_panels(dashboard)}
    assert {
        "Objective (eval loss) per trial",
        "Best so far",
        "Trials by state",
        "Trials and their parameters",
        "Tokens per second per trial",
        "GPU memory per trial",
        "GPU utilisation per trial (DCGM)",
    } <= titles
    table = next(p for p in iter_panels(dashboard) if p["type"] == "table")
    assert any(
        metric_names.TRIAL_INFO in t["expr"] and "group_left" in t["expr"] for t in table["targets"]
    )
    gpu_hours = next(p for p in iter_panels(dashboard) if p["title"] == "GPU-hours spent")
    assert gpu_hours["type"] == "stat"
    assert metric_names.SWEEP_GPU_HOURS in gpu_hours["targets"][0]["expr"]
    # Trial series are always narrowed to the chosen namespace and sweep.
    for query in panel_queries(dashboard):
        for selector in vector_selectors(query.expr):
            if selector.metric.startswith(metric_names.TRIAL_PREFIX):
                assert 'namespace=~"$namespace"' in selector.matchers, query.label
                assert 'sweep=~"$sweep"' in selector.matchers, query.label


def test_operator_dashboard_has_the_issue_panels() -> None:
    dashboard = load(CHART / "dashboards" / "operator.json")
    exprs = " ".join(q.expr for q in panel_queries(dashboard))
    for name in (
        metric_names.RECONCILE_SECONDS,
        metric_names.TRIAL_TURNOVER_SECONDS,
        metric_names.SWEEPS,
        metric_names.RECONCILE_ERRORS,
    ):
        assert name in exprs


# Colours read without a legend: green good, red bad, blue busy, yellow waiting, grey stopped
# on purpose; a requeued trial (preempted, to run again) gets its own, purple.
STATE_COLORS = {
    "succeeded": "green",
    "failed": "red",
    "running": "blue",
    "pruned": "#8E8E8E",
    "pending": "yellow",
    "queued": "yellow",
    "requeued": "purple",
}
PHASE_COLORS = {
    "Succeeded": "green",
    "Failed": "red",
    "Running": "blue",
    "Pending": "yellow",
    "Suspended": "#8E8E8E",
    "Invalid": "orange",
}
STATE_PANELS = [("sweep", "Trials by state"), ("operator", "Trials by state (all sweeps)")]


@pytest.mark.parametrize(("name", "title"), STATE_PANELS, ids=[n for n, _ in STATE_PANELS])
def test_trials_by_state_has_a_fixed_colour_per_state(name: str, title: str) -> None:
    from kubetune.operator.metrics import TRIAL_STATES
    from tests.chart.render_dashboards import GRAFANA_COLORS, fixed_colors

    (panel,) = [
        p for p in iter_panels(load(CHART / "dashboards" / f"{name}.json")) if p["title"] == title
    ]
    # byName matches the series' display name: the legend must be the bare state label.
    assert [t["legendFormat"] for t in panel["targets"]] == ["{{state}}"]
    colors: dict[str, str] = {}
    for override in panel["fieldConfig"]["overrides"]:
        assert override["matcher"]["id"] == "byName"
        (prop,) = override["properties"]
        assert prop["id"] == "color" and prop["value"]["mode"] == "fixed"
        colors[override["matcher"]["options"]] = prop["value"]["fixedColor"]
    assert colors == STATE_COLORS
    assert set(TRIAL_STATES) <= set(colors), "a state the operator exports has no colour"
    # The PNG renderer draws the same colours Grafana does.
    assert fixed_colors(panel) == {s: GRAFANA_COLORS.get(c, c) for s, c in STATE_COLORS.items()}


def test_sweeps_by_phase_has_a_fixed_colour_per_phase() -> None:
    from kubetune.operator.metrics import PHASES
    from tests.chart.render_dashboards import fixed_colors

    dashboard = load(CHART / "dashboards" / "operator.json")
    (panel,) = [p for p in iter_panels(dashboard) if p["title"] == "Sweeps by phase"]
    assert [t["legendFormat"] for t in panel["targets"]] == ["{{phase}}"]
    assert set(fixed_colors(panel)) == set(PHASES) == set(PHASE_COLORS)
    for override in panel["fieldConfig"]["overrides"]:
        phase = override["matcher"]["options"]
        assert override["properties"][0]["value"]["fixedColor"] == PHASE_COLORS[phase]
