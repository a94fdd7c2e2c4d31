"""bench/search_efficiency.py runs end to end (quick mode) and writes its report."""

import json
from pathlib import Path

from bench import search_efficiency


def test_quick_run_writes_json_and_markdown(tmp_path: Path) -> None:
    assert search_efficiency.main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "search_efficiency.json").read_text())
    assert set(report["problems"]) == {"branin", "hartmann6"}
    for study in report["problems"].values():
        assert set(study["methods"]) == {"random", "tpe", "tpe-parallel4", "grid"}
        assert study["methods"]["tpe"]["trials"] == search_efficiency.QUICK.budget
    arms = report["pruning"]["problems"]["curves"]["arms"]
    # No pruning runs every trial to the end; ASHA must have stopped some.
    assert arms["none"]["median_steps"] == 8 * 1000
    assert arms["asha"]["median_steps"] < arms["none"]["median_steps"]
    assert set(report["targets_met"]) >= {"asha_steps<=1/3", "hartmann6_tpe_vs_random<=0.25"}
    text = (tmp_path / "search_efficiency.md").read_text()
    assert "| hartmann6 |" in text and "## Targets" in text
