"""A trial stopped by SIGTERM and launched again in the same output dir resumes from its
checkpoint and ends exactly where an uninterrupted run ends.

The trainer on CPU with one thread is deterministic, so "the same" is bit for bit:
every eval_loss of the history compared with ==, no tolerance.
"""

import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune import metric_names as names
from kubetune.trial_result import TrialResult
from kubetune_trainer.checkpoint import CHECKPOINT_DIR, PREVIOUS_DIR
from tests.trainer.trial_process import TrialProcess, trial_env, value

pytestmark = pytest.mark.slow

STEPS = 24
# Dropout on: the resumed run must restore the torch RNG to draw the same masks.
PARAMS = {"learning_rate": 0.002, "lora_r": 8, "lora_dropout": 0.1}
TRAINER: dict[str, Any] = {
    "model": "tiny",
    "method": "lora",
    "dataset": {"path": "synthetic:arithmetic", "evalSplit": "test[:16]"},
    "maxSteps": STEPS,
    "evalEvery": 4,  # and so a checkpoint every 4 steps (checkpointEvery's default)
    "args": {"eval_max_samples": 4, "num_threads": 1},
}


def _env(tmp: Path, cache: Path, params: dict[str, Any]) -> dict[str, str]:
    env = trial_env(tmp, TRAINER, params, scrape_wait=0)
    env[conventions.ENV_CACHE_DIR] = str(cache)
    return env


def _finish(tmp: Path, cache: Path, params: dict[str, Any] = PARAMS) -> TrialProcess:
    env = _env(tmp, cache, params)
    env[conventions.ENV_METRICS_PORT] = "-1"
    trial = TrialProcess(env)
    try:
        assert trial.wait(timeout=180) == conventions.EXIT_OK, trial.stderr
    finally:
        trial.kill()
    return trial


def _result(tmp: Path) -> TrialResult:
    return TrialResult.from_message((tmp / "termination-log").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> TrialResult:
    tmp = tmp_path_factory.mktemp("whole")
    _finish(tmp, tiny_cache)
    return _result(tmp)


@pytest.fixture(scope="module")
def stopped(tiny_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A trial's output dir after SIGTERM at about half way, and the trial's log."""
    tmp = tmp_path_factory.mktemp("stopped")
    trial = TrialProcess(_env(tmp, tiny_cache, PARAMS))
    try:
        trial.wait_for(lambda s: value(s, names.STEP) >= STEPS // 2 - 4, timeout=120)
        trial.proc.send_signal(signal.SIGTERM)
        assert trial.wait(timeout=60) == conventions.EXIT_STOPPED, trial.stderr
    finally:
        trial.kill()
    assert _result(tmp).steps < STEPS, "stopped too late to test a resume"
    return tmp / "out", trial.stderr


def _copy(stopped: tuple[Path, str], tmp: Path) -> Path:
    shutil.copytree(stopped[0], tmp / "out")
    return tmp / "out"


def test_sigterm_writes_a_checkpoint_of_the_last_step(stopped: tuple[Path, str]) -> None:
    out, log = stopped
    result = TrialResult.model_validate_json((out / conventions.RESULT_FILE).read_text())
    assert (out / CHECKPOINT_DIR / "trainer_state.json").exists()
    assert f"checkpoint of step {result.steps} written" in log
    assert result.resumed_from is None
    assert not list(out.glob(".checkpoint.tmp-*"))


def test_resumed_run_ends_exactly_where_an_uninterrupted_one_does(
    stopped: tuple[Path, str], uninterrupted: TrialResult, tiny_cache: Path, tmp_path: Path
) -> None:
    out = _copy(stopped, tmp_path)
    at = TrialResult.model_validate_json((out / conventions.RESULT_FILE).read_text()).steps
    trial = _finish(tmp_path, tiny_cache)
    result = _result(tmp_path)
    assert f"resuming from the checkpoint of step {at}" in trial.stderr
    assert result.resumed_from == at and result.steps == STEPS
    # Bit for bit: the same weights, optimizer, schedule, dropout masks and data order.
    assert result.metrics["eval_loss"] == uninterrupted.metrics["eval_loss"]
    # The history spans both attempts, each evaluation once.
    assert result.intermediate == uninterrupted.intermediate
    assert result.best == uninterrupted.best


def test_a_checkpoint_of_other_parameters_is_not_resumed(
    stopped: tuple[Path, str], tiny_cache: Path, tmp_path: Path
) -> None:
    _copy(stopped, tmp_path)
    trial = _finish(tmp_path, tiny_cache, {**PARAMS, "learning_rate": 0.001})
    result = _result(tmp_path)
    assert "written with other parameters or settings; starting from step 0" in trial.stderr
    assert result.resumed_from is None
    assert [step for step, _ in result.intermediate["eval_loss"]] == list(range(4, STEPS + 1, 4))


def test_a_damaged_checkpoint_falls_back_to_the_previous_one(
    stopped: tuple[Path, str], uninterrupted: TrialResult, tiny_cache: Path, tmp_path: Path
) -> None:
    out = _copy(stopped, tmp_path)
    previous = int(
        (out / PREVIOUS_DIR / "trainer_state.json").read_text().split('"step": ')[1].split(",")[0]
    )
    weights = out / CHECKPOINT_DIR / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])  # as a write cut short would leave it
    # A temporary folder of a write that was killed: never read, cleared by the next write.
    (out / ".checkpoint.tmp-999").mkdir()
    (out / ".checkpoint.tmp-999" / "weights.pt").write_bytes(b"partial")
    trial = _finish(tmp_path, tiny_cache)
    result = _result(tmp_path)
    assert "ignoring the checkpoint in" in trial.stderr and "unreadable" in trial.stderr
    assert result.resumed_from == previous
    assert result.metrics["eval_loss"] == uninterrupted.metrics["eval_loss"]
    assert not (out / ".checkpoint.tmp-999").exists()
