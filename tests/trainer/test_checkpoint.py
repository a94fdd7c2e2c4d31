"""The checkpoint folder on its own: atomic replacement, what is refused and what is skipped."""

import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from kubetune.spec import TrainerSpec
from kubetune.spec.training_args import parse_args
from kubetune_trainer import checkpoint, distributed, sharding
from kubetune_trainer.config import RunConfig


def _model() -> torch.nn.Sequential:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    model[0].requires_grad_(False)  # like a frozen base under an adapter
    return model


def _write(out: Path, model: torch.nn.Module, step: int, fingerprint: str = "fp") -> None:
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    state = checkpoint.TrainerState(step=step, fingerprint=fingerprint, micro_batches=step)
    state.history = {"eval_loss": [(step, 1.0 / step)]}
    checkpoint.write(
        out,
        state,
        checkpoint.trainable_state(model),
        optimizer.state_dict(),
        {"last_epoch": step},
        checkpoint.rng_state(),
    )


def test_the_newest_checkpoint_is_found_and_the_one_before_kept(tmp_path: Path) -> None:
    model = _model()
    for step in (2, 4, 6):
        _write(tmp_path, model, step)
    found = checkpoint.find(tmp_path, "fp", model)
    assert found is not None and found.state.step == 6
    assert found.state.history == {"eval_loss": [(6, 1.0 / 6)]}
    assert set(found.weights) == {"1.weight", "1.bias"}  # trainable only
    assert found.scheduler == {"last_epoch": 6}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        checkpoint.CHECKPOINT_DIR,
        checkpoint.PREVIOUS_DIR,
    ]


def test_rng_state_round_trips(tmp_path: Path) -> None:
    model = _model()
    random.seed(7)
    torch.manual_seed(7)
    _write(tmp_path, model, 1)
    expected = (random.random(), torch.rand(3))
    random.seed(8)
    torch.manual_seed(8)
    found = checkpoint.find(tmp_path, "fp", model)
    assert found is not None
    checkpoint.set_rng_state(found.rng)
    got = (random.random(), torch.rand(3))
    assert got[0] == expected[0] and torch.equal(got[1], expected[1])


def test_a_checkpoint_of_another_run_is_refused(tmp_path: Path) -> None:
    model = _model()
    _write(tmp_path, model, 2, fingerprint="other")
    assert checkpoint.find(tmp_path, "fp", model) is None


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "weights.pt").write_bytes((d / "weights.pt").read_bytes()[:50]),
        lambda d: (d / "optimizer.pt").unlink(),
        lambda d: (d / "trainer_state.json").write_text("{"),
        lambda d: (d / "rng.pt").write_bytes(b"x" * (d / "rng.pt").stat().st_size),
    ],
    ids=["truncated", "missing", "bad-json", "garbage-same-size"],
)
def test_a_damaged_checkpoint_falls_back_to_the_previous(tmp_path: Path, damage: Any) -> None:
    model = _model()
    _write(tmp_path, model, 2)
    _write(tmp_path, model, 4)
    damage(tmp_path / checkpoint.CHECKPOINT_DIR)
    found = checkpoint.find(tmp_path, "fp", model)
    assert found is not None and found.state.step == 2
    damage(tmp_path / checkpoint.PREVIOUS_DIR)
    assert checkpoint.find(tmp_path, "fp", model) is None


def test_weights_of_another_shape_are_not_loaded(tmp_path: Path) -> None:
    _write(tmp_path, _model(), 2)
    other = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 5))
    assert checkpoint.find(tmp_path, "fp", other) is None


def test_a_killed_write_leaves_the_last_checkpoint_readable(tmp_path: Path) -> None:
    model = _model()
    _write(tmp_path, model, 2)
    # Killed before its rename: a temporary folder, never read, cleared by the next write.
    partial = tmp_path / ".checkpoint.tmp-12345"
    partial.mkdir()
    (partial / "weights.pt").write_bytes(b"half")
    found = checkpoint.find(tmp_path, "fp", model)
    assert found is not None and found.state.step == 2
    # Killed between its two renames: only the previous one is there.
    (tmp_path / checkpoint.CHECKPOINT_DIR).rename(tmp_path / checkpoint.PREVIOUS_DIR)
    found = checkpoint.find(tmp_path, "fp", model)
    assert found is not None and found.state.step == 2
    _write(tmp_path, model, 4)
    assert not partial.exists()


def _config(params: dict[str, Any], **trainer: Any) -> RunConfig:
    spec = TrainerSpec.model_validate(trainer)
    return RunConfig(trainer=spec, args=parse_args({**spec.args, **params}), params=params)


def test_fingerprint_follows_what_shapes_the_run_only() -> None:
    base = checkpoint.fingerprint(_config({"learning_rate": 0.1}), 10, 0, 100)
    same = [
        checkpoint.fingerprint(_config({"learning_rate": 0.1}), 10, 0, 100),
        checkpoint.fingerprint(_config({"learning_rate": 0.1}, evalEvery=3), 10, 0, 100),
        checkpoint.fingerprint(_config({"learning_rate": 0.1}, checkpointEvery=7), 10, 0, 100),
    ]
    other = [
        checkpoint.fingerprint(_config({"learning_rate": 0.2}), 10, 0, 100),
        checkpoint.fingerprint(_config({"learning_rate": 0.1}, args={"seed": 3}), 10, 0, 100),
        checkpoint.fingerprint(_config({"learning_rate": 0.1}, method="full"), 10, 0, 100),
        checkpoint.fingerprint(_config({"learning_rate": 0.1}), 20, 0, 100),
        checkpoint.fingerprint(_config({"learning_rate": 0.1}), 10, 0, 101),
    ]
    assert all(f == base for f in same)
    assert len({base, *other}) == 1 + len(other)


def _write_sharded(out: Path, model: torch.nn.Sequential, step: int) -> torch.optim.Optimizer:
    """A per-rank checkpoint from one process (a world of 1: torch.distributed.checkpoint
    then writes one rank's files), after one optimizer step so there is state to keep."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    state = checkpoint.TrainerState(step=step, fingerprint="fp", micro_batches=step)
    world = distributed.World()
    seconds = checkpoint.write_sharded(
        out, state, model, optimizer, {"last_epoch": step}, {}, world, torch.device("cpu")
    )
    assert seconds < float("inf")
    return optimizer


def _trained(model: torch.nn.Sequential) -> torch.Tensor:
    layer = model[1]
    assert isinstance(layer, torch.nn.Linear)
    return layer.weight


SINGLE_PROCESS = pytest.mark.filterwarnings("ignore:torch.distributed is disabled")


@SINGLE_PROCESS
def test_a_per_rank_checkpoint_is_found_and_loads_weights_and_optimizer(tmp_path: Path) -> None:
    model = _model()
    optimizer = _write_sharded(tmp_path, model, 3)
    folder = tmp_path / checkpoint.CHECKPOINT_DIR
    assert not (folder / "weights.pt").exists()
    sizes = json.loads((folder / "trainer_state.json").read_text())["sizes"]
    assert "shards/.metadata" in sizes and "shards/__0_0.distcp" in sizes

    found = checkpoint.find(tmp_path, "fp", _model())
    assert found is not None and found.shards == folder / "shards"
    assert found.state.step == 3 and found.scheduler == {"last_epoch": 3} and not found.weights

    fresh = _model()
    with torch.no_grad():
        _trained(fresh).zero_()
    fresh_optimizer = torch.optim.AdamW([p for p in fresh.parameters() if p.requires_grad])
    sharding.load_shards(fresh, fresh_optimizer, found.shards)
    assert torch.equal(_trained(fresh), _trained(model))
    saved, loaded = optimizer.state_dict()["state"], fresh_optimizer.state_dict()["state"]
    assert saved.keys() == loaded.keys()
    for key in saved:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(saved[key][name], loaded[key][name]), (key, name)


@SINGLE_PROCESS
@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "shards" / "__0_0.distcp").write_bytes(b"x"),
        lambda d: (d / "shards" / ".metadata").unlink(),
    ],
    ids=["truncated-shard", "missing-metadata"],
)
def test_a_damaged_per_rank_checkpoint_falls_back_to_the_previous(
    tmp_path: Path, damage: Any
) -> None:
    model = _model()
    _write_sharded(tmp_path, model, 2)
    _write_sharded(tmp_path, model, 4)
    damage(tmp_path / checkpoint.CHECKPOINT_DIR)
    found = checkpoint.find(tmp_path, "fp", model)
    assert found is not None and found.state.step == 2


@SINGLE_PROCESS
def test_a_per_rank_checkpoint_of_other_shapes_is_not_loaded(tmp_path: Path) -> None:
    _write_sharded(tmp_path, _model(), 2)
    other = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 5))
    other[0].requires_grad_(False)
    assert checkpoint.find(tmp_path, "fp", other) is None
