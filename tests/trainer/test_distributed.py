"""Several trainer processes in one trial (torchrun, DDP, gloo on CPU).

The batch is global: with N processes each trains a disjoint 1/N of every micro-batch,
so a run on 2 processes follows the 1-process run. Measured on the tiny model, 4 steps,
global batch 8 with 2 accumulation micro-batches: train loss, grad norm and eval loss
agree to a relative 1e-6 or better (float summation order only; LoRA and full fine-tuning);
the tests allow 1e-4.
"""

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune import metric_names as names
from kubetune.trial_result import TrialResult
from kubetune_trainer.batching import IGNORE_INDEX, Tokenized, shard
from kubetune_trainer.distributed import World, world_from_env
from kubetune_trainer.errors import ConfigError
from tests.trainer.trial_process import Series, TrialProcess, trial_env, value

TOLERANCE = 1e-4
TRAINER: dict[str, Any] = {
    "model": "tiny",
    "method": "lora",
    "dataset": {"path": "synthetic:arithmetic", "evalSplit": "test[:16]"},
    "maxSteps": 4,
    "evalEvery": 4,
    "checkpointEvery": 0,
    "args": {
        "eval_max_samples": 4,
        "num_threads": 1,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 2,
    },
}
PARAMS = {"learning_rate": 0.002, "lora_dropout": 0.0}


def item(n: int) -> Tokenized:
    return Tokenized([n, n + 1], [n, n + 1])


# --- sharding and the world, no processes ---------------------------------------------


@pytest.mark.parametrize("packing", [False, True])
def test_ranks_train_disjoint_parts_that_make_up_the_batch(packing: bool) -> None:
    rows = [[item(0), item(10)], [item(20)], [item(30), item(40), item(50)]]
    parts = [shard(rows, packing, 64, rank, 2) for rank in range(2)]
    seen = [tuple(i.input_ids) for part in parts for row in part for i in row]
    assert sorted(seen) == sorted(tuple(i.input_ids) for row in rows for i in row)
    assert len(seen) == len(set(seen))


def test_a_rank_left_nothing_by_a_short_batch_runs_one_example_without_loss() -> None:
    rows = [[item(0)]]
    [[only]] = shard(rows, False, 64, 1, 2)
    assert only.input_ids == [0, 1]
    assert set(only.labels) == {IGNORE_INDEX}
    assert shard(rows, False, 64, 0, 2) == [[item(0)]]


def test_one_process_trains_the_whole_batch() -> None:
    rows = [[item(0)], [item(10)]]
    assert shard(rows, False, 64, 0, 1) is rows


def test_the_global_batch_must_divide_by_the_processes() -> None:
    assert World(0, 2).shard_size(8) == 4
    with pytest.raises(ConfigError, match=r"per_device_train_batch_size: 6 .* divisible by 4"):
        World(0, 4).shard_size(6)


def test_world_comes_from_torchruns_variables() -> None:
    assert world_from_env({}) == World(0, 1, 0)
    world = world_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert world == World(1, 2, 1) and not world.is_main and world.distributed
    with pytest.raises(ConfigError, match="RANK"):
        world_from_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ConfigError, match="WORLD_SIZE: must be an integer"):
        world_from_env({"WORLD_SIZE": "two"})


# --- whole trials under torchrun ------------------------------------------------------


def _env(tmp: Path, cache: Path, **knobs: str) -> dict[str, str]:
    env = trial_env(tmp, TRAINER, PARAMS, scrape_wait=5.0)
    env[conventions.ENV_CACHE_DIR] = str(cache)
    env.update(knobs)
    return env


def _finish(trial: TrialProcess, timeout: float) -> tuple[int, Series | None]:
    """Scrapes as Prometheus would until the trial exits; its exit status and last scrape."""
    last: Series | None = None
    deadline = time.monotonic() + timeout
    try:
        while trial.proc.poll() is None and time.monotonic() < deadline:
            last = trial.scrape() or last
            time.sleep(0.2)
        return trial.wait(timeout=max(1.0, deadline - time.monotonic())), last
    finally:
        trial.kill()


def _metrics(tmp: Path) -> dict[str, float]:
    result = json.loads((tmp / "out" / conventions.RESULT_FILE).read_text())
    metrics: dict[str, float] = result["metrics"]
    return metrics


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_processes_follow_one_with_the_same_global_batch(
    tiny_cache: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one_env = _env(one, tiny_cache)
    one_env[conventions.ENV_METRICS_PORT] = "-1"
    assert TrialProcess(one_env).wait(timeout=120) == conventions.EXIT_OK
    trial = TrialProcess(_env(two, tiny_cache), processes=2)
    code, last = _finish(trial, timeout=180)
    assert code == conventions.EXIT_OK, trial.stderr

    expected, got = _metrics(one), _metrics(two)
    for name in ("train_loss", "grad_norm", "eval_loss"):
        assert got[name] == pytest.approx(expected[name], rel=TOLERANCE), name
    assert got["train_tokens"] == expected["train_tokens"]  # the whole batch, not a shard

    # One trial to the outside: one metrics server, one result, both rank 0's.
    assert trial.stderr.count("metrics on http://") == 1, trial.stderr
    assert trial.stderr.count("succeeded after 4 steps") == 1, trial.stderr
    assert TrialResult.from_message((two / "termination-log").read_text()).status == "succeeded"
    assert last is not None
    assert value(last, names.STEP) == 4
    assert value(last, names.TRAIN_LOSS) == pytest.approx(got["train_loss"])


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_failing_rank_fails_the_trial_without_a_hang(tiny_cache: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, tiny_cache, **{conventions.ENV_TEST_FAIL_RANK: "1"})
    started = time.monotonic()
    trial = TrialProcess(env, processes=2)
    code, _ = _finish(trial, timeout=150)
    took = time.monotonic() - started
    # torchrun's own status for a failed child; the trial is judged a failure by it.
    assert code == conventions.EXIT_FAILED, trial.stderr
    assert "injected failure of rank 1 at step 2" in trial.stderr
    result = TrialResult.from_message((tmp_path / "termination-log").read_text())
    assert result.status in ("failed", "stopped"), (
        result
    )  # rank 0: peer gone, or torchrun's SIGTERM
    assert result.steps < 4
    # Not the scrape wait, not the 30-minute collective timeout: torchrun's teardown.
    assert took < 90, f"{took:.0f}s\n{trial.stderr}"
    print(f"failed after {took:.1f}s")


@pytest.mark.parametrize(("rank", "writes"), [("0", True), ("1", False)])
def test_only_rank_0_reports_a_config_error(
    rank: str, writes: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubetune_trainer import cli

    monkeypatch.setenv(conventions.ENV_RANK, rank)
    monkeypatch.setenv(conventions.ENV_TERMINATION_LOG, str(tmp_path / "termination-log"))
    monkeypatch.setenv(conventions.ENV_OUTPUT_DIR, str(tmp_path / "out"))
    code = cli._config_failure(ConfigError("per_device_train_batch_size", "must divide"))
    assert code == conventions.EXIT_CONFIG_ERROR
    assert (tmp_path / "termination-log").exists() == writes
    assert (tmp_path / "out" / conventions.RESULT_FILE).exists() == writes


_LEAVE = """
import atexit, sys
import torch.distributed as dist
from kubetune_trainer.distributed import leave
from kubetune_trainer.log import log

dist.init_process_group("gloo", init_method=sys.argv[1], rank=0, world_size=1)
dist.all_reduce(__import__("torch").ones(4))
atexit.register(lambda: print("finalized"))
log.info("last words")
print("buffered", end="")
leave(3)
"""


def test_a_rank_leaves_with_its_code_and_its_output_but_no_finalization(tmp_path: Path) -> None:
    # Finalization is where a group's leftover gloo threads abort the process (leave's
    # docstring); the atexit hook is the witness that it is skipped, the flushed lines that
    # nothing written before is lost on the way out.
    done = subprocess.run(
        [sys.executable, "-c", _LEAVE, f"file://{tmp_path / 'store'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "buffered"
    assert "last words" in done.stderr
