"""`kubetune run` of a trial that only prints its metrics: scored and pruned from its log."""

import csv
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.local.cli import kubetune, read_state
from tests.local.sweeps import template_sweep, write

pytestmark = pytest.mark.slow
LOG_TRIAL = str(Path(__file__).with_name("log_trial.py"))
GOOD = (0.25 - 0.3) ** 2 + 0.1


def log_sweep(args: list[str], logs: dict[str, Any], **changes: Any) -> dict[str, Any]:
    sweep = template_sweep(
        parameters=[{"name": "x", "type": "categorical", "values": [0.25]}], **changes
    )
    spec = sweep["spec"]
    spec["objective"] = {"metric": "loss", "direction": "minimize"}
    spec["metrics"]["logs"] = logs
    container = spec["template"]["spec"]["containers"][0]
    container["command"] = [sys.executable, LOG_TRIAL]
    container["args"] = ["--x", "${params.x}", *args]
    return sweep


def rows(output: Path) -> dict[str, dict[str, str]]:
    with (output / "trials.csv").open() as handle:
        return {row["trial"]: row for row in csv.DictReader(handle)}


def test_trials_that_only_print_are_scored_and_a_bad_one_pruned(tmp_path: Path) -> None:
    sweep = write(
        tmp_path,
        log_sweep(
            ["--epochs", "30", "--sleep", "0.15", "--bad", "demo-t0002", "--noise"],
            {},
            budget={"maxTrials": 3, "parallelism": 1},
            early_stopping={"name": "median", "minSteps": 2, "startupTrials": 2},
        ),
    )
    out = tmp_path / "out"
    done = kubetune("run", str(sweep), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(out)
    assert {name: row["state"] for name, row in table.items()} == {
        "demo-t0000": "Succeeded",
        "demo-t0001": "Succeeded",
        "demo-t0002": "Pruned",
    }
    # The final value from the last line; epoch 29 (zero-based) is step 30.
    assert float(table["demo-t0000"]["loss"]) == pytest.approx(GOOD, abs=1e-6)
    history = {r["n"]: r for r in read_state(out)["history"]}  # type: ignore[attr-defined]
    assert history[0]["st"] == 30
    assert history[2]["st"] < 30  # stopped well before its last epoch
    # Pruning was fed from the log, step by step.
    assert len(history[0]["iv"]) >= 2


def test_json_lines_with_a_step_key(tmp_path: Path) -> None:
    sweep = write(
        tmp_path,
        log_sweep(
            ["--epochs", "3", "--sleep", "0.05", "--json"],
            {"format": "json", "stepKey": "epoch"},
            budget={"maxTrials": 1, "parallelism": 1},
        ),
    )
    out = tmp_path / "out"
    done = kubetune("run", str(sweep), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    row = rows(out)["demo-t0000"]
    assert row["state"] == "Succeeded"
    assert float(row["loss"]) == pytest.approx(GOOD)
    assert read_state(out)["history"][0]["st"] == 3  # type: ignore[index]
