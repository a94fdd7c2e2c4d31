"""trainer.args.fsdp: a full fine-tune sharded over 2 processes (FSDP2, gloo on CPU) trains
like 1 process with the same global batch, and its final model is saved whole.

Measured on the tiny model (method full), 4 steps, global batch 8 in 2 micro-batches: train
loss 1.4904420 vs 1.4904432, grad norm 4.1335521 vs 4.1335602, eval loss 1.2376674 vs
1.2376665 (relative 2e-6 or better: float summation order); the saved weights differ by at
most 6e-5 (Adam magnifies tiny gradient differences; the learning rate is 2e-3). The test
allows a relative 1e-4 on the losses, as for DDP (tests/trainer/test_distributed.py), and
1e-3 on any weight.
"""

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune_trainer.cli import _check_world
from kubetune_trainer.config import resolve
from kubetune_trainer.distributed import World
from kubetune_trainer.errors import ConfigError
from kubetune_trainer.sharding import layers
from tests.trainer.test_distributed import PARAMS, TRAINER
from tests.trainer.trial_process import TrialProcess, trial_env

TOLERANCE = 1e-4


def _trainer(fsdp: bool) -> dict[str, Any]:
    trainer = copy.deepcopy(TRAINER)
    trainer["method"] = "full"
    if fsdp:
        trainer["args"]["fsdp"] = True
    return trainer


def _run(tmp: Path, cache: Path, fsdp: bool, processes: int) -> dict[str, float]:
    env = trial_env(tmp, _trainer(fsdp), PARAMS, scrape_wait=0.0)
    env[conventions.ENV_CACHE_DIR] = str(cache)
    env[conventions.ENV_METRICS_PORT] = "-1"
    trial = TrialProcess(env, processes=processes)
    assert trial.wait(timeout=240) == conventions.EXIT_OK, trial.stderr
    result = json.loads((tmp / "out" / conventions.RESULT_FILE).read_text())
    metrics: dict[str, float] = result["metrics"]
    return metrics


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fsdp_on_two_processes_follows_one_and_saves_the_whole_model(
    tiny_cache: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    expected = _run(one, tiny_cache, fsdp=False, processes=1)
    got = _run(two, tiny_cache, fsdp=True, processes=2)
    for name in ("train_loss", "grad_norm", "eval_loss"):
        assert got[name] == pytest.approx(expected[name], rel=TOLERANCE), name
    print({name: (expected[name], got[name]) for name in ("train_loss", "grad_norm", "eval_loss")})
    # The final model is whole (gathered from the shards): it loads as a plain model, with
    # the 1-process run's weights.
    from transformers import AutoModelForCausalLM

    whole = AutoModelForCausalLM.from_pretrained(one / "out" / "final").state_dict()
    gathered = AutoModelForCausalLM.from_pretrained(two / "out" / "final").state_dict()
    assert set(gathered) == set(whole)
    worst = 0.0
    for name, tensor in whole.items():
        assert gathered[name].shape == tensor.shape, name
        worst = max(worst, float((gathered[name] - tensor).abs().max()))
    print(f"largest weight difference {worst:.2e}")
    assert worst < 1e-3


def test_fsdp_is_for_full_fine_tunes(tmp_path: Path) -> None:
    trainer = _trainer(fsdp=True)
    trainer["method"] = "lora"
    with pytest.raises(ConfigError, match=r"args\.fsdp: shards full fine-tunes only"):
        resolve([], trial_env(tmp_path, trainer, PARAMS))
    # A tuned fsdp (a parameter) is checked by the trainer at its start.
    trainer = _trainer(fsdp=False)
    trainer["method"] = "lora"
    config = resolve([], trial_env(tmp_path, trainer, {**PARAMS, "fsdp": True}))
    with pytest.raises(ConfigError, match=r"fsdp: shards full fine-tunes only"):
        _check_world(config, World(0, 2))


def test_each_decoder_layer_is_its_own_unit() -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=2,
    )  # fmt: skip
    found = layers(LlamaForCausalLM(config))
    assert [type(m).__name__ for m in found] == ["LlamaDecoderLayer"] * 3
