"""With trainer.nodes, each node reads its checkpoint from its own mount of outputDir: ranks
that found different ones fail at once, on every rank, instead of mismatching collectives."""

import os
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from kubetune_trainer import distributed
from kubetune_trainer.distributed import World
from kubetune_trainer.errors import ConfigError


def _check(rank: int, steps: list[int], store: str, answers: str) -> None:
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=len(steps)
    )
    try:
        distributed.same_step(steps[rank], World(rank, len(steps)), torch.device("cpu"))
        outcome = "ok"
    except ConfigError as error:
        outcome = str(error)
    finally:
        torch.distributed.destroy_process_group()
    Path(answers, str(rank)).write_text(outcome)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("steps", "ok"), [([30, 30], True), ([30, 0], False)])
def test_ranks_resume_from_one_step_or_all_fail(tmp_path: Path, steps: list[int], ok: bool) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_check, args=(steps, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    outcomes = [(tmp_path / str(rank)).read_text() for rank in range(2)]
    if ok:
        assert outcomes == ["ok", "ok"]
    else:
        assert outcomes[0] == outcomes[1]  # every rank stops, with the same message
        assert outcomes[0].startswith("trainer.outputDir: the processes found checkpoints")
        assert "(0 to 30)" in outcomes[0]


def test_one_process_needs_no_agreement() -> None:
    distributed.same_step(7, World(), torch.device("cpu"))
