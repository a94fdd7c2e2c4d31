"""bench/operator_unfixed.py: the operator_overhead baseline runs without both memory measures."""

import contextlib
import threading

import pytest
from bench import operator_unfixed

from kubetune.engine import samplers
from kubetune.operator import main as operator_main


def test_the_baseline_operator_keeps_glibcs_threshold_and_fits_side_by_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Registered so that monkeypatch puts the real ones back after the bench module's patch.
    monkeypatch.setattr(operator_main, "fix_mmap_threshold", operator_main.fix_mmap_threshold)
    monkeypatch.setattr(samplers, "_GP_ASK", samplers._GP_ASK)
    assert isinstance(samplers._GP_ASK, type(threading.Lock()))
    seen: dict[str, object] = {}

    def operator() -> int:  # stands in for the operator's run: records what it would use
        seen["fixed"] = operator_main.fix_mmap_threshold()
        seen["lock"] = samplers._GP_ASK
        return 7

    monkeypatch.setattr(operator_main, "main", operator)
    assert operator_unfixed.main() == 7
    assert seen["fixed"] is False
    assert isinstance(seen["lock"], contextlib.nullcontext)
