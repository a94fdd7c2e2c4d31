"""Which Hugging Face hub repositories a trainer block reads: what a prefetch downloads.

Pure (no hub client, no torch): the operator decides from it whether a sweep needs a
prefetch pod, `kubetune run` whether to prefetch before its trials, and the trainer's
`prefetch` command what to download (with a local-existence check the operator cannot make).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from kubetune import conventions
from kubetune.spec.trainer import TrainerSpec

RepoType = Literal["model", "dataset"]
SYNTHETIC_PREFIX = "synthetic:"
# A dataset.path with one of these endings (or a path prefix) is a local file, never a hub id.
LOCAL_SUFFIXES = (".jsonl", ".json", ".txt")
_TRUE = ("1", "true", "yes", "on")


def looks_local(path: str) -> bool:
    return Path(path).suffix in LOCAL_SUFFIXES or path.startswith(("/", "./", "../", "~"))


def _never(_path: str) -> bool:
    return False


def hub_dataset(path: str, exists: Callable[[str], bool] = _never) -> str | None:
    """The hub dataset id dataset.path names; None for synthetic data and local files."""
    if path.startswith(SYNTHETIC_PREFIX) or looks_local(path):
        return None
    # A local file or a folder laid out as a hub repository needs no download.
    return None if exists(path) else path


def hub_repos(
    trainer: TrainerSpec, exists: Callable[[str], bool] = _never
) -> list[tuple[str, RepoType]]:
    """The hub repositories a trial of this trainer block reads: none for tiny or local paths.

    `exists` says whether a path exists where the trial runs; the operator cannot look
    into the trainer image, so there only the spelling of a path makes it local.
    """
    repos: list[tuple[str, RepoType]] = []
    model = trainer.model
    local = model == conventions.TINY_MODEL or model.startswith(("/", "./", "../", "~"))
    if not local and not exists(model):
        repos.append((model, "model"))
    dataset = hub_dataset(trainer.dataset.path, exists)
    if dataset is not None:
        repos.append((dataset, "dataset"))
    return repos


def offline_set(trainer: TrainerSpec) -> bool:
    """Whether trainer.env already sets HF_HUB_OFFLINE on: the user's cache needs no download."""
    return any(
        var.name == conventions.ENV_HF_HUB_OFFLINE and (var.value or "").strip().lower() in _TRUE
        for var in trainer.env
    )


def cluster_prefetch(trainer: TrainerSpec | None) -> list[tuple[str, RepoType]]:
    """What the operator's prefetch pod downloads before a sweep's first trial: the hub
    repositories of a trainer block with trainer.cache (empty: no prefetch pod)."""
    if trainer is None or trainer.cache is None or offline_set(trainer):
        return []
    return hub_repos(trainer)


def repos_key(repos: list[tuple[str, RepoType]]) -> str:
    """The repositories as one line, e.g. `model org/llm, dataset org/data`."""
    return ", ".join(f"{kind} {repo}" for repo, kind in repos)
