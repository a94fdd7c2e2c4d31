"""Several trainer processes on one node (torchrun + DDP): who this process is, and the
few collectives the training loop needs so every rank takes the same decisions.

One process (no WORLD_SIZE, or 1) never touches torch.distributed. Under torchrun,
rank 0 is the trial as the outside sees it (metrics, checkpoints, result); the others
only train their shard of each batch.
"""

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn

import torch

from kubetune import conventions
from kubetune_trainer.errors import ConfigError, TrainingFailed

# Any collective that waits longer fails instead of hanging: a rank stuck this long is
# gone. Long enough for rank 0's evaluation, which the others wait out in the next step.
TIMEOUT = timedelta(minutes=30)
# KUBETUNE_TEST_FAIL_RANK's rank fails at this step.
_TEST_FAIL_STEP = 2


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def shard_size(self, global_batch: int) -> int:
        """Examples (rows, with packing) per rank of a global batch; ConfigError if uneven."""
        if global_batch % self.size:
            raise ConfigError(
                "per_device_train_batch_size",
                f"{global_batch} is the batch of all {self.size} processes together and "
                f"must be divisible by {self.size}",
            )
        return global_batch // self.size


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ConfigError(name, f"must be an integer, got {raw[:32]!r}") from None


def world_from_env(env: Mapping[str, str] | None = None) -> World:
    env = os.environ if env is None else env
    size = _int(env, conventions.ENV_WORLD_SIZE, 1)
    rank = _int(env, conventions.ENV_RANK, 0)
    if size < 1 or not 0 <= rank < size:
        raise ConfigError(conventions.ENV_RANK, f"rank {rank} of {size} processes")
    return World(rank, size, _int(env, conventions.ENV_LOCAL_RANK, 0))


def device_for(world: World) -> torch.device:
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return torch.device("cpu")


def init(world: World) -> None:
    """Join the process group (nccl on CUDA, gloo on CPU); a no-op on one process."""
    if not world.distributed or torch.distributed.is_initialized():
        return
    if torch.cuda.is_available():
        torch.distributed.init_process_group("nccl", timeout=TIMEOUT, device_id=device_for(world))
    else:
        torch.distributed.init_process_group("gloo", timeout=TIMEOUT)


def leave(code: int) -> NoReturn:
    """Leave the process group and end this process with ``code``, without Python's
    finalization.

    A rank that returned normally after destroy_process_group sometimes aborted during
    finalization ("terminate called without an active exception", SIGABRT), and torchrun
    then reported a trial that had succeeded as failed: seen in CI, and in 8 of 40 runs of
    a 2-rank FSDP script (0 of 40 with this exit). The likely cause (pytorch/pytorch#179291):
    destroy_process_group drops only torch's own references to the group, so gloo's threads
    outlive it into finalization, and one that then takes the GIL is ended by Python with
    pthread_exit, whose unwind through a noexcept C++ frame aborts. Nothing is lost by
    skipping finalization: the result, checkpoint and adapter are written and closed before
    this; the logs are flushed here.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def any_rank(flag: bool, world: World, device: torch.device) -> bool:
    """True on every rank when it is True on one: a stop all ranks act on at the same step."""
    if not world.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item() > 0)


def total(value: float, world: World, device: torch.device) -> float:
    """The sum over ranks, on every rank."""
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return float(tensor.item())


def largest(value: float, world: World, device: torch.device) -> float:
    """The maximum over ranks, on every rank."""
    if not world.distributed:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return float(tensor.item())


def same_step(step: int, world: World, device: torch.device) -> None:
    """Every rank resumes from the same step, or a ConfigError on every rank: with
    trainer.nodes, a node that cannot see rank 0's checkpoint (outputDir not on a volume
    every node mounts) would train from another step and the collectives would mismatch."""
    if not world.distributed:
        return
    low = torch.tensor([-float(step)], dtype=torch.float64, device=device)
    high = torch.tensor([float(step)], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(low, op=torch.distributed.ReduceOp.MAX)
    torch.distributed.all_reduce(high, op=torch.distributed.ReduceOp.MAX)
    first, last = int(-low.item()), int(high.item())
    if first != last:
        raise ConfigError(
            "trainer.outputDir",
            f"the processes found checkpoints of different steps ({first} to {last}): with "
            "several nodes it must be a volume every node mounts (ReadWriteMany)",
        )


def injected_failure(world: World, step: int, env: Mapping[str, str] | None = None) -> None:
    """Tests only (KUBETUNE_TEST_FAIL_RANK): this rank fails at step 2."""
    env = os.environ if env is None else env
    wanted = env.get(conventions.ENV_TEST_FAIL_RANK)
    if wanted is not None and wanted == str(world.rank) and step == _TEST_FAIL_STEP:
        raise TrainingFailed(
            f"injected failure of rank {world.rank} at step {step} "
            f"({conventions.ENV_TEST_FAIL_RANK})"
        )
