"""Whole trials as subprocesses: training, live metrics, result files, SIGTERM, generate mode."""

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune import conventions
from kubetune import metric_names as names
from kubetune.trial_result import TrialResult
from tests.trainer.trial_process import Series, TrialProcess, trial_env, value

pytestmark = pytest.mark.slow

LABELS = {"sweep": "demo", "trial": "demo-t0001", "namespace": "default"}
PARAMS = {"learning_rate": 0.002, "lora_r": 8, "lora_dropout": 0.0}
TRAINER: dict[str, Any] = {
    "model": "tiny",
    "method": "lora",
    "dataset": {"path": "synthetic:arithmetic", "evalSplit": "test[:64]"},
    "maxSteps": 40,
    "evalEvery": 10,
    "args": {"eval_on_start": True, "eval_max_samples": 32, "num_threads": 1},
}


def env_for(
    tmp: Path, cache: Path, params: dict[str, Any] = PARAMS, **trainer: Any
) -> dict[str, str]:
    env = trial_env(tmp, {**TRAINER, **trainer}, params)
    env[conventions.ENV_CACHE_DIR] = str(cache)
    return env


def finish_unscraped(
    tmp: Path, cache: Path, expect: int, params: dict[str, Any] = PARAMS, **trainer: Any
) -> TrialProcess:
    """Runs a trial to its end with its metrics server off; fails unless it exits with `expect`."""
    env = env_for(tmp, cache, params, **trainer)
    env[conventions.ENV_METRICS_PORT] = "-1"
    trial = TrialProcess(env)
    try:
        code = trial.wait(timeout=120)
    finally:
        trial.kill()
    assert code == expect, trial.stderr
    return trial


def written_result(tmp: Path) -> TrialResult:
    return TrialResult.from_message((tmp / "termination-log").read_text())


@pytest.fixture(scope="module")
def finished_trial(
    tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrialProcess, Series, Series, Path]:
    """One short LoRA trial, scraped while it runs and until it exits."""
    tmp = tmp_path_factory.mktemp("trial")
    trial = TrialProcess(env_for(tmp, tiny_cache))
    try:
        running = trial.wait_for(
            lambda s: value(s, names.STEP) >= 1 and value(s, names.TRIAL_DONE) == 0, timeout=120
        )
        # Keep scraping as Prometheus would; the trial waits for one scrape of its final values.
        last = running
        while trial.proc.poll() is None:
            last = trial.scrape() or last
            time.sleep(0.2)
        assert trial.wait(timeout=30) == conventions.EXIT_OK, trial.stderr
    finally:
        trial.kill()
    return trial, running, last, tmp


def test_metrics_scraped_while_running_carry_the_named_series(
    finished_trial: tuple[TrialProcess, Series, Series, Path],
) -> None:
    _, running, _, _ = finished_trial
    declared = {*names.TRAINER_GAUGES, names.TOKENS_TOTAL, names.TRIAL_INFO}
    assert set(running) <= declared, set(running) - declared
    for name in (
        names.TRAIN_LOSS,
        names.LEARNING_RATE,
        names.GRAD_NORM,
        names.STEP,
        names.MAX_STEPS,
        names.TOKENS_TOTAL,
        names.TOKENS_PER_SECOND,
        names.EVAL_LOSS,
        names.EVAL_ACCURACY,
        names.EVAL_STEP,
        names.TRIAL_DONE,
    ):
        assert [labels for labels, _ in running[name]] == [LABELS], name
    assert value(running, names.MAX_STEPS) == 40
    assert value(running, names.TOKENS_TOTAL) > 0
    assert names.GPU_MEMORY_BYTES not in running  # no GPU here
    [(info, one)] = running[names.TRIAL_INFO]
    assert one == 1
    assert info == {**LABELS, "learning_rate": "0.002", "lora_r": "8", "lora_dropout": "0.0"}


def test_final_scrape_sees_the_final_values(
    finished_trial: tuple[TrialProcess, Series, Series, Path],
) -> None:
    _, _, last, _ = finished_trial
    assert value(last, names.TRIAL_DONE) == 1
    assert value(last, names.STEP) == 40
    assert value(last, names.EVAL_STEP) == 40


def test_lora_run_lowers_eval_loss_and_writes_the_result(
    finished_trial: tuple[TrialProcess, Series, Series, Path],
) -> None:
    _, _, last, tmp = finished_trial
    message = (tmp / "termination-log").read_text()
    assert len(message.encode()) <= 4096
    result = TrialResult.from_message(message)
    assert result == TrialResult.model_validate_json((tmp / "out" / "result.json").read_text())
    assert result.status == "succeeded" and result.steps == 40
    losses = result.intermediate["eval_loss"]
    assert [step for step, _ in losses] == [0, 10, 20, 30, 40]
    assert losses[-1][1] < 0.8 * losses[0][1], losses
    assert result.metrics["eval_loss"] == pytest.approx(value(last, names.EVAL_LOSS))
    assert 0.0 <= result.metrics["eval_accuracy"] <= 1.0
    assert result.best is not None and result.best.metric == "eval_loss"
    assert result.best.value == min(v for _, v in losses)
    # What validate lets an objective name is exactly what a trial reports both ways.
    both = {k for k in result.metrics if names.trial_metric(k) in last}
    assert both == set(names.trainer_objectives("train"))
    assert result.wall_seconds > 0
    assert result.adapter_path is not None
    adapter = Path(result.adapter_path)
    assert adapter == tmp / "out" / "final"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 8
    assert (adapter / "adapter_model.safetensors").exists()
    assert (adapter / "tokenizer.json").exists()
    best = yaml.safe_load((adapter / "best.yaml").read_text())
    assert best == {"trainer": {"args": {**TRAINER["args"], **PARAMS}}}
    # keepCheckpoints best (the default): the finished trial's checkpoints are gone.
    assert not (tmp / "out" / "checkpoint").exists()
    assert not (tmp / "out" / "checkpoint.previous").exists()


def test_generate_mode_scores_a_trained_adapter(
    finished_trial: tuple[TrialProcess, Series, Series, Path], tiny_cache: Path, tmp_path: Path
) -> None:
    _, _, _, trained = finished_trial
    finish_unscraped(
        tmp_path,
        tiny_cache,
        conventions.EXIT_OK,
        {"temperature": 0.7, "top_k": 20, "presence_penalty": 0.5},
        mode="generate",
        adapter=str(trained / "out" / "final"),
        args={"eval_max_samples": 16, "num_threads": 1},
    )
    result = written_result(tmp_path)
    assert result.status == "succeeded" and result.steps == 0
    assert result.best is not None and result.best.metric == "eval_accuracy"
    assert 0.0 <= result.metrics["eval_accuracy"] <= 1.0
    assert set(result.metrics) == set(names.trainer_objectives("generate"))


def test_sigterm_stops_promptly_with_a_partial_result(tiny_cache: Path, tmp_path: Path) -> None:
    trial = TrialProcess(env_for(tmp_path, tiny_cache, maxSteps=100000, evalEvery=1000))
    try:
        trial.wait_for(lambda s: value(s, names.STEP) >= 3, timeout=120)
        trial.proc.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        code = trial.wait(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        trial.kill()
    assert code == conventions.EXIT_STOPPED, trial.stderr
    assert elapsed < 10, f"took {elapsed:.1f}s to stop"
    result = written_result(tmp_path)
    assert result.status == "stopped"
    assert result.reason is not None and "SIGTERM" in result.reason
    assert 3 <= result.steps < 100000
    assert "train_loss" in result.metrics
    assert (tmp_path / "out" / "result.json").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"params": {"learning_rat": 0.1}}, "parameters.learning_rat: unknown trainer argument"),
        ({"params": {"lora_r": "sixteen"}}, "parameters.lora_r: must be an integer"),
        (
            {"dataset": {"path": "/nonexistent/train.jsonl"}},
            "dataset.path: file not found: /nonexistent/train.jsonl",
        ),
        (
            {"args": {"target_modules": ["q_proj", "attn_qkv"]}},
            "trainer.args.target_modules: no linear module named attn_qkv",
        ),
        ({"method": "qlora"}, "trainer.method: qlora needs a CUDA GPU"),
    ],
)
def test_bad_configuration_fails_with_one_clear_line(
    change: dict[str, Any], message: str, tiny_cache: Path, tmp_path: Path
) -> None:
    params = change.pop("params", PARAMS)
    trial = finish_unscraped(tmp_path, tiny_cache, conventions.EXIT_CONFIG_ERROR, params, **change)
    assert "Traceback" not in trial.stderr
    errors = [line for line in trial.lines if "config error" in line]
    assert len(errors) == 1 and message in errors[0], trial.stderr
    result = written_result(tmp_path)
    assert result.status == "failed" and result.reason is not None and message in result.reason


def test_full_fine_tune_with_packing_saves_the_model(tiny_cache: Path, tmp_path: Path) -> None:
    finish_unscraped(
        tmp_path,
        tiny_cache,
        conventions.EXIT_OK,
        {"learning_rate": 1e-4, "weight_decay": 0.01},
        method="full",
        maxSteps=6,
        evalEvery=3,
        args={"packing": True, "eval_max_samples": 8, "gradient_accumulation_steps": 2},
    )
    result = written_result(tmp_path)
    assert result.status == "succeeded" and result.steps == 6
    assert [step for step, _ in result.intermediate["eval_loss"]] == [3, 6]
    assert result.adapter_path is not None
    assert (Path(result.adapter_path) / "config.json").exists()  # a whole model, not an adapter


def test_architecture_search_trains_a_model_from_scratch(tiny_cache: Path, tmp_path: Path) -> None:
    params = {"num_layers": 2, "hidden_size": 64, "num_attention_heads": 2, "activation": "gelu"}
    finish_unscraped(
        tmp_path,
        tiny_cache,
        conventions.EXIT_OK,
        {**params, "learning_rate": 1e-3},
        method="full",
        maxSteps=4,
        evalEvery=4,
        args={"from_scratch": True, "eval_max_samples": 4},
    )
    result = written_result(tmp_path)
    assert result.status == "succeeded"
    config = json.loads((tmp_path / "out" / "final" / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["hidden_act"]) == (
        2,
        64,
        "gelu",
    )


def test_cross_validation_reports_mean_and_spread(tiny_cache: Path, tmp_path: Path) -> None:
    finish_unscraped(
        tmp_path,
        tiny_cache,
        conventions.EXIT_OK,
        maxSteps=3,
        evalEvery=3,
        dataset={"path": "synthetic:reverse", "trainSplit": "train[:40]"},
        args={"num_folds": 2, "eval_max_samples": 4, "num_threads": 1},
    )
    result = written_result(tmp_path)
    assert result.status == "succeeded" and result.steps == 6
    per_fold = [value for _, value in result.intermediate["eval_loss_fold"]]
    assert len(per_fold) == 2
    assert result.metrics["eval_loss"] == pytest.approx(sum(per_fold) / 2)
    assert result.metrics["eval_loss_std"] == pytest.approx(abs(per_fold[0] - per_fold[1]) / 2)
    assert result.adapter_path is None


@pytest.mark.parametrize(
    ("keep", "final", "checkpoints"), [("all", True, True), ("none", False, False)]
)
def test_keep_checkpoints_all_and_none(
    keep: str, final: bool, checkpoints: bool, tiny_cache: Path, tmp_path: Path
) -> None:
    finish_unscraped(
        tmp_path,
        tiny_cache,
        conventions.EXIT_OK,
        maxSteps=4,
        evalEvery=2,  # a checkpoint at step 2 (the last step saves final/ instead)
        keepCheckpoints=keep,
        args={"eval_max_samples": 4, "num_threads": 1},
    )
    out = tmp_path / "out"
    result = written_result(tmp_path)
    assert result.status == "succeeded"
    assert (out / "checkpoint").exists() is checkpoints
    assert (out / "final" / "adapter_config.json").exists() is final
    assert (result.adapter_path is not None) is final
    assert (out / "result.json").exists()
