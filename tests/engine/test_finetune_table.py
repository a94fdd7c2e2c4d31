"""The fine-tuning table keeps one base model's curves apart from another's."""

import json
from pathlib import Path
from typing import Any

import pytest
from bench import finetune_curves


def _row(key: str, tiny: str | None, final: float, steps: int = 40) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": key,
        "config": 0,
        "seed": 0,
        "params": finetune_curves.sample(int(key[1:5])),
        "max_steps": steps,
        "eval_every": 5,
        "status": "succeeded",
        "curve": [[s, final + 1.0 / s] for s in range(5, steps + 1, 5)],
    }
    if tiny is not None:
        row["tiny"] = tiny
    return row


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_row_is_done_only_for_the_model_it_trained(tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    _write(table, [_row("c0000-s0", "old", 1.0), _row("c0001-s0", "new", 1.0)])
    assert finetune_curves.done_keys(table, 40, 5, "new") == {"c0001-s0"}
    assert finetune_curves.done_keys(table, 40, 5, "old") == {"c0000-s0"}
    assert finetune_curves.done_keys(table, 80, 5, "new") == set()


def test_the_table_reads_one_model_the_one_with_most_rows(tmp_path: Path) -> None:
    table = tmp_path / "t.jsonl"
    rows = [_row(f"c{i:04d}-s0", "old", 1.0 + i / 10) for i in range(3)]
    rows += [_row("c0009-s0", "new", 0.1), _row("c0010-s0", "new", 0.2, steps=80)]
    _write(table, rows)
    problem = finetune_curves.load_problem(table)
    assert problem is not None
    assert sorted(run.key for run in problem.runs) == ["c0000-s0", "c0001-s0", "c0002-s0"]


def test_replicated_adds_seeds_without_renaming_rows() -> None:
    base = {r.key for r in finetune_curves.design(20)}
    every = [r.key for r in finetune_curves.design(20, replicated=1.0)]
    assert base < set(every) and len(every) == 60
    assert {"c0019-s0", "c0019-s1", "c0019-s2"} <= set(every)


def test_replicated_outside_zero_to_one_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        finetune_curves.main(["--replicated", "1.5", "--limit", "0"])
    assert exited.value.code == 2
    assert "--replicated: a share, 0 to 1" in capsys.readouterr().err
