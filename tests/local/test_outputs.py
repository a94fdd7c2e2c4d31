import csv
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from kubetune.engine import SweepEngine
from kubetune.local.board import Board, TrialRow
from kubetune.local.outputs import csv_columns
from kubetune.local.progress import render
from kubetune.local.report import write_outputs
from kubetune.spec import SweepSpec, effective_spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_engine(
    spec: SweepSpec,
    trials: int,
    fail: frozenset[int] = frozenset(),
    prune: frozenset[int] = frozenset(),
) -> SweepEngine:
    """Drive the real engine through a sweep: x close to 0.3 is best."""
    engine = SweepEngine(spec, "demo")
    for _ in range(trials):
        (plan,) = engine.start_trials()
        engine.mark_running(plan.number)
        x = float(plan.params.get("x", plan.params.get("learning_rate", 0.0)))
        engine.report(plan.number, 5, (x - 0.3) ** 2 + 0.5)
        if plan.number in fail:
            engine.fail(plan.number, "Error: exit code 1")
        elif plan.number in prune:
            engine.prune(plan.number)
        else:
            engine.complete(plan.number, [(x - 0.3) ** 2], 10)
    return engine


def template_spec(max_trials: int = 6) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "algorithm": {"name": "random", "seed": 1},
            "budget": {"maxTrials": max_trials},
            "parameters": [
                {"name": "x", "type": "float", "min": 0.0, "max": 1.0},
                {"name": "kind", "type": "categorical", "values": ["a", "b"]},
            ],
            "template": {"spec": {"containers": [{"name": "t", "command": ["t"]}]}},
        }
    )


def test_outputs_of_a_template_sweep(tmp_path: Path) -> None:
    spec = effective_spec(template_spec())
    engine = run_engine(spec, 6, fail=frozenset({1}), prune=frozenset({2}))
    outputs = write_outputs(tmp_path, "demo", spec, engine, {0: 1.5})

    with (tmp_path / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "trial", "number", "state", "eval_loss", "step", "reason", "requeues", "wall_seconds", "gpu_seconds",
        "x", "kind",
    ]  # fmt: skip
    assert [r["state"] for r in rows] == [
        "Succeeded",
        "Failed",
        "Pruned",
        "Succeeded",
        "Succeeded",
        "Succeeded",
    ]
    assert rows[0]["wall_seconds"] == "1.5" and rows[1]["reason"] == "Error: exit code 1"

    best = engine.best()
    assert best is not None and outputs.best == best
    loaded = yaml.safe_load((tmp_path / "best.yaml").read_text())
    assert loaded == best.parameters  # template: the plain parameters
    assert (tmp_path / "best.yaml").read_text().startswith(f"# Best trial {best.trial}")

    for name in ("objective.png", "parallel_coordinates.png", "param_importance.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC), name
        assert name in outputs.files

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "optuna.journal")))
    study = optuna.load_study(study_name="demo", storage=storage)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    assert states.count(optuna.trial.TrialState.PRUNED) == 1
    assert study.best_value == pytest.approx(best.value)


def test_trainer_best_yaml_is_a_trainer_args_block(tmp_path: Path) -> None:
    spec = effective_spec(
        SweepSpec.model_validate(
            {
                "algorithm": {"name": "random", "seed": 2},
                "budget": {"maxTrials": 2},
                "trainer": {
                    "model": "tiny",
                    "args": {"per_device_train_batch_size": 4, "lora_r": 4},
                },
            }
        )
    )
    engine = run_engine(spec, 2)
    write_outputs(tmp_path, "demo", spec, engine, {})
    loaded = yaml.safe_load((tmp_path / "best.yaml").read_text())
    best = engine.best()
    assert best is not None
    assert set(loaded) == {"trainer"} and set(loaded["trainer"]) == {"args"}
    args = loaded["trainer"]["args"]
    assert args["per_device_train_batch_size"] == 4  # fixed args kept
    assert args["lora_r"] == best.parameters["lora_r"]  # the winner overrides a fixed arg
    assert {k: args[k] for k in best.parameters} == best.parameters
    # Reusable: the block validates as a trainer spec again.
    SweepSpec.model_validate({"trainer": {"model": "tiny", **loaded["trainer"]}})


def test_few_trials_skip_importance_with_a_note(tmp_path: Path) -> None:
    spec = effective_spec(template_spec(max_trials=2))
    engine = run_engine(spec, 2)
    (tmp_path / "param_importance.png").write_bytes(b"stale")
    outputs = write_outputs(tmp_path, "demo", spec, engine, {})
    assert "param_importance.png" not in outputs.files
    assert not (tmp_path / "param_importance.png").exists()
    assert any("param_importance.png: not drawn, needs" in n for n in outputs.notes)
    assert (tmp_path / "objective.png").read_bytes().startswith(PNG_MAGIC)


def test_no_success_writes_no_best(tmp_path: Path) -> None:
    spec = effective_spec(template_spec(max_trials=2))
    engine = run_engine(spec, 2, fail=frozenset({0, 1}))
    outputs = write_outputs(tmp_path, "demo", spec, engine, {})
    assert outputs.best is None and not (tmp_path / "best.yaml").exists()
    assert (tmp_path / "objective.png").read_bytes().startswith(PNG_MAGIC)
    assert "parallel_coordinates.png" not in outputs.files


def test_live_table_shows_running_and_best() -> None:
    from rich.console import Console

    board = Board("demo", "eval_loss", "minimize", 10, best_trial="demo-t0001", best_value=0.125)
    board.rows[0] = TrialRow(0, "demo-t0000", {"x": 0.5}, state="Pruned", step=3, value=0.9)
    board.rows[1] = TrialRow(1, "demo-t0001", {"x": 0.3}, state="Succeeded", step=10, value=0.125)
    board.rows[2] = TrialRow(2, "demo-t0002", {"x": 0.7}, step=4, value=0.4)
    board.counts = {"running": 1, "succeeded": 1, "pruned": 1}
    console = Console(record=True, width=120)
    console.print(render(board))
    text = console.export_text()
    assert "2/10 done" in text and "0.125" in text
    assert "demo-t0001 *" in text  # the best is marked
    lines = [line for line in text.splitlines() if line.startswith("demo-t000")]
    assert lines[0].startswith("demo-t0002")  # running trials first


def test_csv_columns_never_collide() -> None:
    spec = SweepSpec.model_validate(
        {
            "objectives": [
                {"metric": "eval_loss", "direction": "minimize"},
                {"metric": "step", "direction": "maximize"},
            ],
            "parameters": [{"name": "state", "type": "categorical", "values": ["a"]}],
            "template": {"spec": {"containers": [{"name": "t", "command": ["t"]}]}},
        }
    )
    columns = csv_columns(spec)
    assert len(columns) == len(set(columns))
    assert "objective_step" in columns and "param_state" in columns


def test_trials_csv_has_the_gpu_seconds_of_each_trial(tmp_path: Path) -> None:
    spec = effective_spec(template_spec(2))
    engine = SweepEngine(spec, "demo")
    (plan,) = engine.start_trials()
    engine.mark_running(plan.number)
    engine.requeue(plan.number, "Interrupted", gpu_seconds=30)
    (plan,) = engine.start_trials()
    engine.complete(plan.number, [0.5], 10, gpu_seconds=90.4)
    (other,) = engine.start_trials()
    engine.fail(other.number, "Error: exit code 1")
    write_outputs(tmp_path, "demo", spec, engine, {})
    with (tmp_path / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["gpu_seconds"] for r in rows] == ["120", "0"]
