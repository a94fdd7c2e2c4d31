"""trials.csv and best.yaml: the run's results in forms people and tools reuse."""

import csv
from collections.abc import Mapping
from pathlib import Path

from kubetune.best import artifacts_line, best_scores, best_yaml
from kubetune.conventions import trial_name
from kubetune.spec import BestTrial, SweepSpec, TrialRecord

FIXED_COLUMNS = (
    "trial",
    "number",
    "state",
    "step",
    "reason",
    "requeues",
    "wall_seconds",
    "gpu_seconds",
)


def _columns(spec: SweepSpec) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """CSV column of each objective metric, each additional metric and each parameter, kept
    apart from the fixed columns: a name taken already (e.g. step) gets a prefix."""
    taken = set(FIXED_COLUMNS)
    metrics: dict[str, str] = {}
    for objective in spec.objective_list:
        column = (
            objective.metric if objective.metric not in taken else f"objective_{objective.metric}"
        )
        metrics[objective.metric] = column
        taken.add(column)
    additional: dict[str, str] = {}
    for name in spec.additional_metrics:
        column = name if name not in taken else f"metric_{name}"
        additional[name] = column
        taken.add(column)
    params: dict[str, str] = {}
    for param in spec.parameters:
        column = param.name if param.name not in taken else f"param_{param.name}"
        params[param.name] = column
        taken.add(column)
    return metrics, additional, params


def csv_columns(spec: SweepSpec) -> list[str]:
    """trial, number, state, <objective metrics>, <additional metrics>, step, reason, requeues,
    wall_seconds, gpu_seconds, <params>."""
    metrics, additional, params = _columns(spec)
    return [
        *FIXED_COLUMNS[:3],
        *metrics.values(),
        *additional.values(),
        *FIXED_COLUMNS[3:],
        *params.values(),
    ]


def write_trials_csv(
    path: Path,
    sweep: str,
    spec: SweepSpec,
    history: list[TrialRecord],
    wall_seconds: Mapping[int, float],
) -> None:
    metrics, additional, params = _columns(spec)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=csv_columns(spec))
        writer.writeheader()
        for record in sorted(history, key=lambda r: r.number):
            row: dict[str, object] = {
                "trial": trial_name(sweep, record.number),
                "number": record.number,
                "state": record.state,
                "step": record.step if record.step is not None else "",
                "reason": record.reason or "",
                "requeues": record.requeues or 0,
                "wall_seconds": f"{wall_seconds[record.number]:.1f}"
                if record.number in wall_seconds
                else "",
                "gpu_seconds": record.gpu_seconds or 0,
            }
            for index, column in enumerate(metrics.values()):
                row[column] = (
                    record.values[index] if record.values and index < len(record.values) else ""
                )
            for name, column in additional.items():
                row[column] = (record.metrics or {}).get(name, "")
            for name, value in record.params.items():
                if name in params:
                    row[params[name]] = value
            writer.writerow(row)


def write_best_yaml(
    path: Path, spec: SweepSpec, best: BestTrial, local_link: str | None = None
) -> None:
    """local_link: where the run linked the best trial's artifacts, if it did."""
    metrics = [o.metric for o in spec.objective_list]
    header = f"# Best trial {best.trial}: {best_scores(metrics, best)}\n"
    header += artifacts_line(best, local_link)
    if spec.trainer is not None:
        header += "# Merge into spec.trainer of a sweep to reuse these settings.\n"
    path.write_text(header + best_yaml(spec, best), encoding="utf-8")
