import os
from pathlib import Path

import pytest

from kubetune_trainer.config import default_cache_dir


@pytest.fixture(scope="session")
def tiny_cache() -> Path:
    """The machine's tiny-model cache, built once (about a minute) if it is not there yet.

    Shared with `kubetune run` on purpose: the cache is keyed by a hash of the recipe
    and corpus, so a stale model is never reused.
    """
    from kubetune_trainer import tiny

    cache = default_cache_dir(os.environ)
    tiny.ensure_tiny(cache)
    return cache
