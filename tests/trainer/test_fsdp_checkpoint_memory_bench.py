"""bench/fsdp_checkpoint_memory.py runs end to end on a small model (2 ranks, gloo).

Every arm must load the written model's weights exactly (the bench refuses otherwise). The
trainer's per-rank checkpoint must keep every rank below a copy of the checkpoint, writing
and loading, where gathering on rank 0 holds one there: that is what sets its node figures
apart from the whole-model arms.
"""

import pytest
from bench import fsdp_checkpoint_memory

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_the_checkpoint_bench_runs_every_arm_and_no_rank_of_ours_holds_a_copy() -> None:
    result = fsdp_checkpoint_memory.run(quick=True)
    arms = result["arms"]
    assert set(arms) == set(fsdp_checkpoint_memory.ARMS)
    size = result["checkpoint_mb"]["ours"]
    assert result["checkpoint_mb"]["rank0-gather"] == pytest.approx(size, rel=0.05)
    # The baselines really hold the checkpoint: each rank when read whole; rank 0 when
    # gathered, which the allocator may partly serve from pages the model's step freed, so
    # that one is only asked to exceed ours (31 MB against 3 on a quiet machine, 13 under load).
    assert min(arms["every-rank-reads"]["load"]["peak_mb_per_rank"]) > 0.3 * size
    ours_write = arms["ours"]["write"]["peak_mb_per_rank"]
    assert arms["rank0-gather"]["write"]["peak_mb_per_rank"][0] > 2 * max(ours_write)
    for phase in ("write", "load"):
        ours = arms["ours"][phase]["peak_mb_per_rank"]
        assert max(ours) < 0.3 * size, (phase, ours)
    assert result["ratios"]["write_node_peak_vs_rank0_gather"] < 1
    assert result["ratios"]["load_node_peak_vs_rank0_gather"] < 1
