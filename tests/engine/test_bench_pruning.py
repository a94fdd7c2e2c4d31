"""bench/pruning.py and bench/mo_pruning.py run end to end (quick mode) and write reports."""

import json
from pathlib import Path

import pytest
from bench import mo_pruning, pruning


def test_pruning_quick_run_compares_every_arm(tmp_path: Path) -> None:
    table = tmp_path / "none.jsonl"  # no table: the synthetic curves only
    assert pruning.main(["--quick", "--out", str(tmp_path), "--table", str(table)]) == 0
    report = json.loads((tmp_path / "pruning.json").read_text())
    assert set(report["problems"]) == {"curves", "curves-lr-coupled"}
    for result in report["problems"].values():
        arms = result["arms"]
        assert set(arms) == set(pruning.ARMS)
        assert arms["none"]["median_steps"] == pruning.QUICK.trials * 1000  # nothing stopped
        assert arms["forecast"]["median_steps"] < arms["none"]["median_steps"]
        assert set(result["equal_compute"]["arms"]) == set(pruning.ARMS)
    assert "## Targets" in (tmp_path / "pruning.md").read_text()


def test_hypervolume_of_a_two_point_front() -> None:
    # (1, 3) and (2, 1) against (4, 4): 3x1 + 2x2 (the strip below the first point).
    assert mo_pruning.hypervolume([(1.0, 3.0), (2.0, 1.0), (3.0, 3.5)], (4.0, 4.0)) == 7.0
    assert mo_pruning.hypervolume([(5.0, 1.0)], (4.0, 4.0)) == 0.0


def test_mo_pruning_quick_run_on_a_small_table(tmp_path: Path) -> None:
    rows = []
    for index in range(12):
        final = 1.0 + 0.1 * (index % 5)
        rows.append(
            {
                "key": f"c{index:04d}-s0",
                "config": index,
                "seed": 0,
                "params": {
                    "learning_rate": 1e-4 * (1 + index),
                    "lora_r": 2 + 5 * index,
                    "lora_alpha_ratio": 1.0,
                    "lora_dropout": 0.1,
                    "warmup_ratio": 0.1,
                    "per_device_train_batch_size": 8,
                    "weight_decay": 0.01,
                    "lr_scheduler_type": "linear",
                },
                "max_steps": 40,
                "eval_every": 5,
                "status": "succeeded",
                "curve": [[s, final + 2.0 / s] for s in range(5, 41, 5)],
            }
        )
    table = tmp_path / "table.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert mo_pruning.main(["--quick", "--out", str(tmp_path), "--table", str(table)]) == 0
    report = json.loads((tmp_path / "mo_pruning.json").read_text())
    arms = report["equal_trials"]["arms"]
    assert set(arms) == set(mo_pruning.ARMS)
    assert arms["mo-asha"]["median_steps"] < arms["none"]["median_steps"]
    assert arms["none"]["hypervolume_vs_none"] == pytest.approx(1.0)
    assert mo_pruning.main(["--quick", "--table", str(tmp_path / "missing.jsonl")]) == 1
