"""The tiny model's build: one thread whatever the caller uses, and a cache key that follows
the recipe."""

from pathlib import Path
from typing import Any

import pytest
import torch

from kubetune_trainer import tiny


def test_the_build_pretrains_on_one_thread_and_gives_the_callers_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several threads wait on each other at every op: on busy cores that made a build
    7x slower. The trial's own thread count is restored afterwards."""
    seen: list[int] = []

    def pretrain(model: Any, tokenizer: Any, should_stop: Any) -> float:
        seen.append(torch.get_num_threads())
        return 1.0

    monkeypatch.setattr(tiny, "pretrain", pretrain)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        built = tiny.ensure_tiny(tmp_path)
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert (built / tiny.READY_MARKER).exists()


def test_the_cache_key_follows_the_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed recipe is a new folder: a cache built by the old one is never reused."""
    key = tiny.cache_key()
    monkeypatch.setitem(tiny.PRETRAIN, "steps", tiny.PRETRAIN["steps"] + 1)
    assert tiny.cache_key() != key
    monkeypatch.undo()
    monkeypatch.setattr(tiny, "TINY_VERSION", tiny.TINY_VERSION + 1)
    assert tiny.cache_key() != key


def test_two_builds_start_from_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache key names the recipe, so the build must not depend on the RNG state of
    the process that happens to run it."""
    from safetensors.torch import load_file

    monkeypatch.setattr(tiny, "pretrain", lambda model, tokenizer, should_stop: 1.0)
    torch.manual_seed(1)
    first = load_file(tiny.ensure_tiny(tmp_path / "a") / "model.safetensors")
    torch.manual_seed(2)
    second = load_file(tiny.ensure_tiny(tmp_path / "b") / "model.safetensors")
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name
