"""Resumable checkpoints of a training run in <output dir>/checkpoint/.

A preempted or evicted trial is launched again with the same output dir; it picks up
from its last checkpoint instead of step 0. A checkpoint holds everything the next
step depends on: the trainable weights (the LoRA adapter, or the whole model for
`full`), the optimizer and scheduler states, the RNG states (python, torch, CUDA), the
data position (micro-batches consumed; batching is a pure function of the seed, so the
order continues where it left off), the step, and the metric history, so a resumed run
ends where an uninterrupted one would have (numpy's RNG is not used by the trainer).

Written atomically: a fresh temporary folder renamed into place. The previous
checkpoint is kept as checkpoint.previous/ until the next one is complete, so a
kill at any moment leaves one readable checkpoint. A checkpoint carries a fingerprint
of everything that shapes the run (parameters, effective arguments, model, method,
dataset, steps); one of other settings is never resumed from.

A sharded run (trainer.args.fsdp on several processes) keeps its weights and optimizer
state per rank instead, in shards/ (sharding.save_shards): every rank writes and reads only
its own shards, so a checkpoint never needs the whole model in one process's memory. Rank
0 writes the rest and publishes the folder as above, once every rank's files are on disk.
The sizes of all the files, shards included, are recorded, so a damaged shard makes the
whole checkpoint unreadable before any rank loads from it, and the previous one is used.
"""

import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from kubetune import trial_folders
from kubetune.durable import sync_folder
from kubetune_trainer import distributed, sharding
from kubetune_trainer.config import RunConfig
from kubetune_trainer.log import log

CHECKPOINT_DIR = trial_folders.CHECKPOINT_DIR
PREVIOUS_DIR = trial_folders.PREVIOUS_DIR
_TMP_PREFIX = ".checkpoint.tmp-"
_FORMAT = 1
_STATE = "trainer_state.json"
_WEIGHTS = "weights.pt"
_OPTIMIZER = "optimizer.pt"
_RNG = "rng.pt"
_SHARDS = "shards"
_SHARDS_METADATA = f"{_SHARDS}/.metadata"  # written last by torch.distributed.checkpoint
# The files each layout must hold (its sizes list every file, these at least).
_FILES = (_WEIGHTS, _OPTIMIZER, _RNG)
_SHARDED_FILES = (_RNG, _SHARDS_METADATA)


def fingerprint(
    run: RunConfig, max_steps: int, warmup_steps: int, train_items: int, sharded: bool = False
) -> str:
    """What a checkpoint must match to be resumed: anything that changes the trajectory.

    Not evalEvery or checkpointEvery: they change what is written down, not the weights.
    sharded: the state is in per-rank shards (sharding.save_shards), which an unsharded run
    cannot load, nor a sharded one the whole-model files; the key is added only then, so
    unsharded fingerprints stay as they were.
    """
    spec = run.trainer
    shaped = {
        "params": run.params,
        "args": run.args.model_dump(mode="json"),
        "model": spec.model,
        "method": spec.method,
        "dataset": spec.dataset.model_dump(mode="json"),
        "steps": [max_steps, warmup_steps],
        "trainItems": train_items,
    }
    if sharded:
        shaped["sharded"] = "per-rank"
    text = json.dumps(shaped, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class TrainerState:
    """The JSON half of a checkpoint: where the run is and what it has measured."""

    step: int
    fingerprint: str
    micro_batches: int  # data position: micro-batches consumed since step 0
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    latest: dict[str, float] = field(default_factory=dict)
    first_loss: float | None = None
    high_steps: int = 0
    train_seconds: float = 0.0
    train_tokens: int = 0

    def to_json(self, sizes: dict[str, int]) -> str:
        body = {"format": _FORMAT, "sizes": sizes, **self.__dict__}
        return json.dumps(body, indent=1)

    @classmethod
    def from_json(cls, text: str) -> tuple["TrainerState", dict[str, int]]:
        body = json.loads(text)
        if body.pop("format", None) != _FORMAT:
            raise ValueError("unknown checkpoint format")
        sizes = body.pop("sizes")
        body["history"] = {
            k: [(int(s), float(v)) for s, v in p] for k, p in body["history"].items()
        }
        return cls(**body), sizes


@dataclass
class Checkpoint:
    """A checkpoint read back whole, not yet applied to a model."""

    path: Path
    state: TrainerState
    weights: dict[str, torch.Tensor]  # empty when sharded: each rank loads from shards
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]
    shards: Path | None = None  # sharding.load_shards' folder, for a sharded checkpoint


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def write(
    output_dir: Path,
    state: TrainerState,
    weights: dict[str, torch.Tensor],
    optimizer: dict[str, Any],
    scheduler: dict[str, Any],
    rng: dict[str, Any],
) -> float:
    """Write a checkpoint atomically; returns the seconds it took."""
    started = time.monotonic()
    tmp = _fresh_folder(output_dir, str(os.getpid()))
    torch.save(weights, tmp / _WEIGHTS)
    torch.save(optimizer, tmp / _OPTIMIZER)
    _publish(tmp, output_dir, state, scheduler, rng)
    return time.monotonic() - started


def write_sharded(
    output_dir: Path,
    state: TrainerState,
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: dict[str, Any],
    rng: dict[str, Any],
    world: distributed.World,
    device: torch.device,
) -> float:
    """A sharded run's checkpoint, written atomically; every rank calls it (a collective)
    and gets the same answer: the seconds it took, or inf when it was not written (said in
    rank 0's log), so all ranks decide alike what to do on SIGTERM."""
    started = time.monotonic()
    # One name every rank knows: all write their shards into the same folder.
    tmp = output_dir / f"{_TMP_PREFIX}step-{state.step}"
    ready = 0.0
    if world.is_main:
        try:
            tmp = _fresh_folder(output_dir, f"step-{state.step}")
        except OSError as error:
            _not_written(output_dir, error)
            ready = math.inf
    if distributed.largest(ready, world, device) == math.inf:  # also: the folder exists
        return math.inf
    try:
        sharding.save_shards(model, optimizer, tmp / _SHARDS)
    except Exception as error:  # raised on every rank alike (torch gathers the failures)
        if world.is_main:
            _not_written(output_dir, error)
        return math.inf
    seconds = 0.0
    if world.is_main:
        try:
            _publish(tmp, output_dir, state, scheduler, rng)
            seconds = time.monotonic() - started
        except OSError as error:
            _not_written(output_dir, error)
            seconds = math.inf
    return distributed.largest(seconds, world, device)


def _not_written(output_dir: Path, error: Exception) -> None:
    log.warning(f"cannot write a checkpoint in {output_dir}: {_short(error)}")


def _fresh_folder(output_dir: Path, name: str) -> Path:
    """An empty temporary folder for a checkpoint, after removing any a killed write left."""
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = output_dir / f"{_TMP_PREFIX}{name}"
    tmp.mkdir()
    return tmp


def _publish(
    tmp: Path,
    output_dir: Path,
    state: TrainerState,
    scheduler: dict[str, Any],
    rng: dict[str, Any],
) -> None:
    """Complete the checkpoint in tmp and put it in place of the current one, which becomes
    the previous one."""
    torch.save({"scheduler": scheduler, "rng": rng}, tmp / _RNG)
    sizes = {f.relative_to(tmp).as_posix(): f.stat().st_size for f in _files(tmp)}
    (tmp / _STATE).write_text(state.to_json(sizes))
    _fsync_tree(tmp)
    current, previous = output_dir / CHECKPOINT_DIR, output_dir / PREVIOUS_DIR
    shutil.rmtree(previous, ignore_errors=True)
    if current.exists():
        current.rename(previous)
    tmp.rename(current)
    sync_folder(output_dir)


def _files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file())


def _fsync_tree(folder: Path) -> None:
    """Data on disk before the rename publishes it: a node crash must not leave a
    renamed folder of empty files."""
    for child in _files(folder):
        with child.open("rb") as handle:
            os.fsync(handle.fileno())
    for sub in [folder, *(d for d in folder.rglob("*") if d.is_dir())]:
        sync_folder(sub)


def _read(path: Path) -> Checkpoint:
    """One checkpoint folder; raises on anything missing, truncated or unreadable."""
    state, sizes = TrainerState.from_json((path / _STATE).read_text())
    sharded = _SHARDS_METADATA in sizes
    for name in _SHARDED_FILES if sharded else _FILES:
        if name not in sizes:
            raise ValueError(f"{name} is not part of it")
    for name, expected in sizes.items():
        size = (path / name).stat().st_size
        if size != expected:
            raise ValueError(f"{name} has {size} bytes, {expected} were written")
    rest = torch.load(path / _RNG, map_location="cpu", weights_only=True)
    if sharded:
        return Checkpoint(path, state, {}, {}, rest["scheduler"], rest["rng"], path / _SHARDS)
    # weights_only: a checkpoint is data; it never runs code when read back. mmap: the
    # tensors are pages of the file (private, copy-on-write), read when first touched.
    weights = torch.load(path / _WEIGHTS, map_location="cpu", weights_only=True, mmap=True)
    optimizer = torch.load(path / _OPTIMIZER, map_location="cpu", weights_only=True, mmap=True)
    return Checkpoint(path, state, weights, optimizer, rest["scheduler"], rest["rng"])


def _shapes(found: Checkpoint) -> dict[str, tuple[int, ...]]:
    if found.shards is not None:
        return sharding.shard_shapes(found.shards)
    return {n: tuple(t.shape) for n, t in found.weights.items()}


def find(output_dir: Path, expected: str, model: Any) -> Checkpoint | None:
    """The newest usable checkpoint of this run in output_dir, or None (start at step 0).

    Unreadable ones are skipped (the previous one is tried); one of other settings is
    refused. Each reason is logged, so a trial that starts over says why.
    """
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}
    for name in (CHECKPOINT_DIR, PREVIOUS_DIR):
        path = output_dir / name
        if not path.exists():
            continue
        try:
            found = _read(path)
            got = _shapes(found)
        except Exception as error:  # any damage: try the older one, else start over
            log.warning(f"ignoring the checkpoint in {path}: unreadable ({_short(error)})")
            continue
        if found.state.fingerprint != expected:
            log.info(
                f"not resuming from {path}: it was written with other parameters or "
                "settings; starting from step 0"
            )
            return None
        if got != shapes:
            log.warning(f"ignoring the checkpoint in {path}: its weights do not fit the model")
            continue
        return found
    return None


def _short(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"
