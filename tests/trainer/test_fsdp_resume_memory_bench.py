"""bench/fsdp_resume_memory.py runs end to end on a small model (2 ranks, gloo).

Every arm must load the checkpoint's weights exactly (the bench refuses otherwise), and the
trainer's resume must leave rank 1 without a copy of the checkpoint: that is what sets its
node figure apart from every rank reading the checkpoint whole.
"""

import pytest
from bench import fsdp_resume_memory

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_the_resume_bench_loads_every_arm_and_rank_1_reads_no_copy() -> None:
    result = fsdp_resume_memory.run(quick=True)
    arms = result["arms"]
    assert set(arms) == set(fsdp_resume_memory.ARMS)
    checkpoint = result["checkpoint_mb"]
    every = arms["every-rank-reads"]["peak_mb_per_rank"]
    ours = arms["ours"]["peak_mb_per_rank"]
    assert min(every) > 0.3 * checkpoint, every  # the baseline really reads it on each rank
    assert ours[1] < 0.1 * checkpoint, ours
    assert result["node_peak_ratio_vs_every_rank_reads"] < 1
