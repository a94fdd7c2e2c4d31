"""How a trial ends: divergence and NaN detection, result files, best-value tracking."""

import math
from pathlib import Path

import pytest

from kubetune import conventions
from kubetune.trial_result import TrialResult
from kubetune_trainer.errors import TrainingFailed
from kubetune_trainer.progress import Progress
from kubetune_trainer.result import write_result
from kubetune_trainer.training import check_loss


def test_nan_or_infinite_loss_fails_the_trial() -> None:
    with pytest.raises(TrainingFailed, match="train loss is nan at step 7"):
        check_loss(7, math.nan, 1.0, 2.0, 0, 4.0)
    with pytest.raises(TrainingFailed, match="gradient norm is inf"):
        check_loss(3, 1.0, math.inf, 2.0, 0, 4.0)


def test_sustained_blow_up_fails_but_a_spike_does_not() -> None:
    high = check_loss(5, 9.0, 1.0, 2.0, 0, 4.0)  # one step above 4 x 2.0
    assert high == 1
    assert check_loss(6, 3.0, 1.0, 2.0, high, 4.0) == 0  # back to normal resets
    high = check_loss(7, 9.0, 1.0, 2.0, 0, 4.0)
    high = check_loss(8, 9.5, 1.0, 2.0, high, 4.0)
    with pytest.raises(TrainingFailed, match=r"diverging: train loss 10 > 4 x the first step's 2"):
        check_loss(9, 10.0, 1.0, 2.0, high, 4.0)


def test_progress_tracks_best_and_history() -> None:
    progress = Progress(best_metric="eval_loss")
    progress.record_eval(10, {"eval_loss": 2.0, "eval_accuracy": 0.1})
    progress.record_eval(20, {"eval_loss": 1.5, "eval_accuracy": 0.3})
    progress.record_eval(30, {"eval_loss": 1.7, "eval_accuracy": math.nan})
    progress.step = 30
    result = progress.result("succeeded")
    assert result.best is not None and (result.best.value, result.best.step) == (1.5, 20)
    assert result.intermediate["eval_loss"] == [(10, 2.0), (20, 1.5), (30, 1.7)]
    assert result.intermediate["eval_accuracy"] == [(10, 0.1), (20, 0.3)]
    assert result.metrics["eval_loss"] == 1.7 and result.metrics["eval_accuracy"] == 0.3
    accuracy = Progress(best_metric="eval_accuracy")
    accuracy.record_eval(5, {"eval_accuracy": 0.2})
    accuracy.record_eval(9, {"eval_accuracy": 0.6})
    assert accuracy.result("stopped").best is not None
    assert accuracy.result("stopped").best.value == 0.6  # type: ignore[union-attr]


def test_result_goes_to_both_files(tmp_path: Path) -> None:
    result = TrialResult(status="failed", reason="diverging", steps=3)
    write_result(result, tmp_path / "out", tmp_path / "termination-log")
    assert TrialResult.from_message((tmp_path / "termination-log").read_text()) == result
    saved = (tmp_path / "out" / conventions.RESULT_FILE).read_text()
    assert TrialResult.model_validate_json(saved) == result


def test_unwritable_termination_log_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = TrialResult(status="succeeded", steps=1)
    write_result(result, tmp_path, tmp_path / "missing-dir" / "termination-log")
    assert (tmp_path / conventions.RESULT_FILE).exists()
    assert "warning: cannot write the termination message" in capsys.readouterr().err


def test_epochs_and_warmup_ratio_resolve_against_the_data() -> None:
    from kubetune.spec import TrainerSpec
    from kubetune.spec.training_args import parse_args
    from kubetune_trainer.batching import Tokenized
    from kubetune_trainer.config import RunConfig
    from kubetune_trainer.training import plan_steps

    items = [Tokenized([1] * 5, [1] * 5) for _ in range(10)]
    args = parse_args(
        {
            "num_train_epochs": 2,
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 1,
            "warmup_ratio": 0.5,
        }
    )
    plan = plan_steps(RunConfig(trainer=TrainerSpec(), args=args), items)
    assert (plan.max_steps, plan.warmup_steps) == (6, 3)  # 3 micro-batches an epoch
    packed = parse_args({"num_train_epochs": 1, "packing": True, "max_length": 20})
    assert plan_steps(RunConfig(trainer=TrainerSpec(), args=packed), items).max_steps == 1
    fixed = parse_args({"warmup_steps": 50})
    capped = plan_steps(RunConfig(trainer=TrainerSpec(max_steps=30), args=fixed), items)
    assert (capped.max_steps, capped.warmup_steps) == (30, 30)  # warmup never exceeds the run


def test_waiting_for_the_tiny_model_lock_still_answers_a_stop(tmp_path: Path) -> None:
    from filelock import FileLock

    from kubetune_trainer import tiny
    from kubetune_trainer.errors import Stopped

    held = FileLock(str(tmp_path / f"tiny-{tiny.cache_key()}") + ".lock")
    held.acquire()  # another trial is building it
    try:
        with pytest.raises(Stopped, match="waiting for another trial"):
            tiny.ensure_tiny(tmp_path, should_stop=lambda: True)
    finally:
        held.release()
