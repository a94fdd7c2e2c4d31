"""A sharded trial (trainer.args.fsdp, 2 processes, gloo on CPU) stopped by SIGTERM part way
resumes from its checkpoint and ends exactly where an uninterrupted sharded run ends, and
on 4 ranks where it ends but for the order of the sums.

The checkpoint is per rank (torch.distributed.checkpoint: each rank writes and reads back
its own shards of the weights and the optimizer state); the data position, schedule and RNG
continue as in a 1-process resume (tests/trainer/test_resume.py). A damaged shard makes the
resume fall back to the previous checkpoint, which ends in the same place.
On CPU with one thread per process the sharded run is deterministic, so "the same" is bit
for bit: the whole eval_loss history, the final train loss and grad norm compared with ==.
"""

import copy
import json
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune import metric_names as names
from kubetune.trial_result import TrialResult
from kubetune_trainer.checkpoint import CHECKPOINT_DIR, PREVIOUS_DIR
from tests.trainer.test_distributed import PARAMS, TRAINER
from tests.trainer.trial_process import TrialProcess, trial_env, value

pytestmark = pytest.mark.slow

STEPS = 12


def _trainer() -> dict[str, Any]:
    trainer = copy.deepcopy(TRAINER)
    trainer["method"] = "full"
    trainer["args"]["fsdp"] = True
    trainer["maxSteps"] = STEPS
    trainer["evalEvery"] = 4
    trainer["checkpointEvery"] = 2
    return trainer


def _env(tmp: Path, cache: Path, metrics: bool) -> dict[str, str]:
    env = trial_env(tmp, _trainer(), PARAMS, scrape_wait=0.0)
    env[conventions.ENV_CACHE_DIR] = str(cache)
    if not metrics:
        env[conventions.ENV_METRICS_PORT] = "-1"
    return env


def _finish(tmp: Path, cache: Path, processes: int = 2) -> tuple[TrialResult, str]:
    trial = TrialProcess(_env(tmp, cache, metrics=False), processes=processes)
    try:
        assert trial.wait(timeout=300) == conventions.EXIT_OK, trial.stderr
    finally:
        trial.kill()
    return TrialResult.from_message((tmp / "termination-log").read_text()), trial.stderr


def _stop_part_way(tmp: Path, cache: Path) -> tuple[int, str]:
    """SIGTERM (to torchrun, which passes it to both ranks) after step 5; the step stopped at."""
    trial = TrialProcess(_env(tmp, cache, metrics=True), processes=2)
    try:
        trial.wait_for(lambda s: value(s, names.STEP) >= 5, timeout=240)
        trial.proc.send_signal(signal.SIGTERM)
        trial.wait(timeout=120)
    finally:
        trial.kill()
    stopped = json.loads((tmp / "out" / conventions.RESULT_FILE).read_text())
    assert stopped["status"] == "stopped", trial.stderr
    assert stopped["steps"] < STEPS, "stopped too late to test a resume"
    return int(stopped["steps"]), trial.stderr


@pytest.mark.timeout(900)
def test_a_sharded_trial_resumes_from_its_checkpoint_bit_for_bit(
    tiny_cache: Path, tmp_path: Path
) -> None:
    whole, _ = _finish(tmp_path / "whole", tiny_cache)

    cut = tmp_path / "cut"
    at, log = _stop_part_way(cut, tiny_cache)
    # The stop wrote a checkpoint of the last completed step (each rank its shards),
    # whatever step that was relative to checkpointEvery.
    assert f"checkpoint of step {at} written" in log
    current = cut / "out" / CHECKPOINT_DIR
    state = json.loads((current / "trainer_state.json").read_text())
    assert state["step"] == at
    assert sorted(p.name for p in (current / "shards").glob("*.distcp")) == [
        "__0_0.distcp",
        "__1_0.distcp",
    ]
    assert not (current / "weights.pt").exists()  # nothing whole

    # A copy whose newest checkpoint lost the end of rank 1's shard.
    damaged = tmp_path / "damaged"
    shutil.copytree(cut, damaged)
    shard = damaged / "out" / CHECKPOINT_DIR / "shards" / "__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[:-100])
    before = json.loads((damaged / "out" / PREVIOUS_DIR / "trainer_state.json").read_text())
    wider = tmp_path / "wider"
    shutil.copytree(cut, wider)

    resumed, log = _finish(cut, tiny_cache)
    assert f"resuming from the checkpoint of step {at}" in log
    assert resumed.resumed_from == at and resumed.steps == STEPS
    print(f"stopped at step {at} of {STEPS}; final eval_loss {resumed.metrics['eval_loss']!r}")
    _assert_same_run(resumed, whole)
    # The final model is still gathered whole after a resume.
    assert (cut / "out" / "final").is_dir()

    fallback, log = _finish(damaged, tiny_cache)
    assert "unreadable (ValueError: shards/__1_0.distcp has" in log
    assert f"resuming from the checkpoint of step {before['step']}" in log
    assert fallback.resumed_from == before["step"] < at
    _assert_same_run(fallback, whole)

    # The same checkpoint resumed on 4 ranks (an elastic job that came back larger): each
    # rank reads its new share of the 2 ranks' shards. Every rank draws the same global
    # batches whatever their number, so the run goes on where it was; only the order of
    # the sums differs, hence approx.
    widened, log = _finish(wider, tiny_cache, processes=4)
    assert f"resuming from the checkpoint of step {at}" in log
    assert widened.resumed_from == at and widened.steps == STEPS
    for name in ("eval_loss", "train_loss"):
        assert widened.metrics[name] == pytest.approx(whole.metrics[name], rel=1e-4), name
    assert len(widened.intermediate) == len(whole.intermediate)


def _assert_same_run(resumed: TrialResult, whole: TrialResult) -> None:
    for name in ("eval_loss", "train_loss", "grad_norm"):
        assert resumed.metrics[name] == whole.metrics[name], name
    assert resumed.intermediate == whole.intermediate
