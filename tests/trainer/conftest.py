import os
from pathlib import Path

import pytest

from kubetune_trainer.config import default_cache_dir

# No network in tests: hub datasets come from local folders. datasets and huggingface_hub read
# these once, at import, so they are set before any test module imports them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_cache() -> Path:
    """The machine's tiny-model cache, built once (about 20 s of one core) if it is not there yet.

    Shared with `kubetune run` on purpose: the cache is keyed by a hash of the recipe
    and corpus, so a stale model is never reused.
    """
    from kubetune_trainer import tiny

    cache = default_cache_dir(os.environ)
    tiny.ensure_tiny(cache)
    return cache


@pytest.fixture
def datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh Arrow cache for the datasets library, instead of the user's ~/.cache."""
    import datasets

    cache = tmp_path / "hf-datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    return cache
