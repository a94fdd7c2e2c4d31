"""Draw the dashboards' main panels with matplotlib, from their own queries against Prometheus.

    python -m tests.chart.render_dashboards docs/dashboards

runs the tiny scraped sweep (see live_run.py) and writes sweep.png and operator.png. The
tests call `render_dashboard` into a temporary folder to prove every drawn panel has data.
"""

import json
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from kubetune import metric_names
from tests.chart.live_run import ScrapedRun, scraped_run
from tests.chart.promql import iter_panels, substitute
from tests.chart.rendering import CHART

# The panels worth a picture, in reading order.
MAIN_PANELS: dict[str, tuple[str, ...]] = {
    "sweep": (
        "Objective (eval loss) per trial",
        "Best so far",
        "Trials by state",
        "Trials and their parameters",
        "Tokens per second per trial",
        "GPU memory per trial",
    ),
    "operator": (
        "Reconcile latency",
        "Trial turnover latency",
        "Sweeps by phase",
        "Trials by state (all sweeps)",
        "Reconcile errors by reason",
        "Suggestion latency",
    ),
}
# Why a panel may rightly be empty in these pictures.
NO_DATA_NOTES = {
    "GPU memory per trial": "(CPU-only trials: the trainer reports it on CUDA devices only)"
}
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
Series = list[dict[str, Any]]
# Grafana's named colours (its classic palette), for the panels' fixedColor overrides; a
# fixedColor may also be a #rrggbb value, drawn as is.
GRAFANA_COLORS = {
    "green": "#73BF69",
    "red": "#F2495C",
    "blue": "#5794F2",
    "yellow": "#FADE2A",
    "orange": "#FF9830",
    "purple": "#B877D9",
}


def fixed_colors(panel: Mapping[str, Any]) -> dict[str, str]:
    """Series name -> colour, from the panel's byName field overrides (as Grafana draws it)."""
    colors: dict[str, str] = {}
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if override["matcher"]["id"] != "byName":
            continue
        for prop in override["properties"]:
            if prop["id"] == "color" and prop["value"].get("mode") == "fixed":
                color = prop["value"]["fixedColor"]
                colors[override["matcher"]["options"]] = GRAFANA_COLORS.get(color, color)
    return colors


def _legend(template: str, labels: Mapping[str, str]) -> str:
    if template in ("", "__auto"):
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "__name__")
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), template)


def _points(item: Mapping[str, Any]) -> tuple[list[float], list[float]]:
    times = [float(t) for t, _ in item["values"]]
    values = [float(v) for _, v in item["values"]]
    return times, values


def _objective_by_step(axes: Axes, run: ScrapedRun, panel: Mapping[str, Any]) -> int:
    """Eval loss per trial against the step it was measured at (kubetune_trial_eval_step)."""
    variables = run.variables()
    drawn = 0
    for target in panel["targets"]:
        expr = substitute(target["expr"], variables)
        if target["refId"] == "A":
            step_expr = expr.replace(metric_names.EVAL_LOSS, metric_names.EVAL_STEP)
            steps = {
                item["metric"]["trial"]: dict(zip(*_points(item), strict=True))
                for item in run.prometheus.query_range(step_expr, run.start, run.end, 1)
            }
            for item in run.prometheus.query_range(expr, run.start, run.end, 1):
                trial = item["metric"]["trial"]
                pairs = sorted(
                    {
                        (steps[trial][t], v)
                        for t, v in zip(*_points(item), strict=True)
                        if t in steps.get(trial, {})
                    }
                )
                axes.plot(
                    [s for s, _ in pairs], [v for _, v in pairs], marker="o", ms=3, label=trial
                )
                drawn += 1
        else:  # stopped early: mark where each such trial ended
            for item in run.prometheus.query(expr, run.end):
                trial = item["metric"]["trial"]
                last_step = run.prometheus.query(
                    f'max_over_time({metric_names.EVAL_STEP}{{trial="{trial}"}}[10m])', run.end
                )
                if last_step:
                    step, value = float(last_step[0]["value"][1]), float(item["value"][1])
                    axes.plot(
                        [step], [value], "X", color="red", ms=12, label=f"{trial} stopped early"
                    )
                    drawn += 1
    axes.set_xlabel("step")
    return drawn


def _time_series(axes: Axes, run: ScrapedRun, panel: Mapping[str, Any]) -> int:
    variables = run.variables()
    drawn = 0
    stacked = panel["fieldConfig"]["defaults"].get("custom", {}).get("stacking", {}).get("mode")
    curves: list[tuple[list[float], list[float], str]] = []
    for target in panel["targets"]:
        expr = substitute(target["expr"], variables)
        for item in run.prometheus.query_range(expr, run.start, run.end, 1):
            times, values = _points(item)
            curves.append(
                (
                    [t - run.start for t in times],
                    values,
                    _legend(target["legendFormat"], item["metric"]),
                )
            )
    fixed = fixed_colors(panel)
    cycle = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * len(curves))
    colors = [fixed.get(label) or next(cycle) for _, _, label in curves]
    if stacked == "normal" and curves:
        grid = sorted({t for times, _, _ in curves for t in times})
        rows = [[dict(zip(ts, vs, strict=True)).get(t, 0.0) for t in grid] for ts, vs, _ in curves]
        labels = [label for _, _, label in curves]
        axes.stackplot(grid, rows, labels=labels, colors=colors, alpha=0.8)
        drawn = len(curves)
    else:
        for (times, values, label), color in zip(curves, colors, strict=True):
            axes.plot(times, values, label=label, color=color)
            drawn += 1
    axes.set_xlabel("seconds into the run")
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    if unit in ("s", "bytes", "percentunit"):
        axes.set_ylabel(unit)
    return drawn


def _table(axes: Axes, run: ScrapedRun, panel: Mapping[str, Any]) -> int:
    variables = run.variables()
    rows: dict[str, dict[str, str]] = {}
    hidden = {"__name__", "job", "instance", "namespace", "sweep"}
    for target in panel["targets"]:
        column = "eval loss" if target["refId"] == "A" else "last step"
        for item in run.prometheus.query(substitute(target["expr"], variables), run.end):
            row = rows.setdefault(item["metric"]["trial"], {})
            row.update({k: v for k, v in item["metric"].items() if k not in hidden})
            row[column] = f"{float(item['value'][1]):.4g}"
    columns = sorted({key for row in rows.values() for key in row} - {"trial"})
    axes.axis("off")
    if rows:
        cells = [[trial] + [rows[trial].get(c, "") for c in columns] for trial in sorted(rows)]
        table = axes.table(cellText=cells, colLabels=["trial", *columns], loc="center")
        table.scale(1, 1.6)
    return len(rows)


def render_dashboard(run: ScrapedRun, name: str, out_dir: Path) -> dict[str, int]:
    """Write <out_dir>/<name>.png; returns how many series (or rows) each panel drew."""
    dashboard = json.loads((CHART / "dashboards" / f"{name}.json").read_text())
    panels = {p["title"]: p for p in iter_panels(dashboard)}
    titles = MAIN_PANELS[name]
    figure, grid = plt.subplots(3, 2, figsize=(15, 12))
    drawn: dict[str, int] = {}
    for axes, title in zip(grid.flat, titles, strict=True):
        panel = panels[title]
        if panel["type"] == "table":
            drawn[title] = _table(axes, run, panel)
        elif title.startswith("Objective"):
            drawn[title] = _objective_by_step(axes, run, panel)
        else:
            drawn[title] = _time_series(axes, run, panel)
        axes.set_title(title)
        if not drawn[title]:
            note = NO_DATA_NOTES.get(title, "")
            axes.text(
                0.5, 0.5, f"No data\n{note}", ha="center", va="center", transform=axes.transAxes
            )
        elif panel["type"] != "table":
            axes.legend(fontsize=7, loc="best")
            axes.grid(alpha=0.3)
    figure.suptitle(
        f"{dashboard['title']}  (namespace={run.variables()['namespace']}, sweep={run.variables()['sweep']})"
    )
    figure.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_dir / f"{name}.png", dpi=80)
    plt.close(figure)
    return drawn


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.chart.render_dashboards OUT_DIR", file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    with tempfile.TemporaryDirectory() as workdir, scraped_run(Path(workdir)) as run:
        for name in MAIN_PANELS:
            drawn = render_dashboard(run, name, out_dir)
            print(f"{out_dir / name}.png: {drawn}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
