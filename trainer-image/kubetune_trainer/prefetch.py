"""`python -m kubetune_trainer prefetch`: download a sweep's model (and hub dataset) into HF_HOME once.

Trials that share the cache then load with HF_HUB_OFFLINE=1: nothing is downloaded per trial.
The download is huggingface_hub's own `snapshot_download`, so the cache layout is the one
`from_pretrained` reads. The result is one JSON line on stdout (also the termination message,
where the operator reads it); a hub refusal (gated, private, missing) is one line naming the
repository and the hub's status, exit EXIT_CONFIG_ERROR, no traceback.
"""

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune import conventions
from kubetune.spec.hub import RepoType, hub_repos
from kubetune.spec.trainer import TrainerSpec
from kubetune_trainer import redaction
from kubetune_trainer.config import (
    _load_trainer_block,
    _trainer_spec,
    build_parser,
    termination_log,
)
from kubetune_trainer.errors import ConfigError
from kubetune_trainer.log import log


class PrefetchFailed(Exception):
    """The hub could not be reached or answered an error that is not the sweep's fault."""


@dataclass(frozen=True)
class Fetched:
    repo: str
    repo_type: RepoType
    revision: str  # the commit the snapshot is of
    files: int
    bytes: int  # size of the snapshot's files
    downloaded_bytes: int  # of which this run fetched

    def as_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "type": self.repo_type,
            "revision": self.revision,
            "files": self.files,
            "bytes": self.bytes,
            "downloadedBytes": self.downloaded_bytes,
        }


def repos_to_fetch(spec: TrainerSpec) -> list[tuple[str, RepoType]]:
    """The hub repositories a trial of this trainer block reads: none for tiny or local paths.

    The operator and `kubetune run` decide with the same rule (kubetune.spec.hub); here a
    path that exists where the trial runs is local too.
    """
    return hub_repos(spec, exists=lambda path: Path(path).expanduser().exists())


def _blob_bytes(storage: Path) -> int:
    blobs = storage / "blobs"
    if not blobs.is_dir():
        return 0
    return sum(entry.stat().st_size for entry in blobs.iterdir() if entry.is_file())


def _hub_reason(repo: str, repo_type: RepoType, error: Exception) -> ConfigError | PrefetchFailed:
    """One line naming the repository and what the hub said; never the library's traceback."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    field = "trainer.model" if repo_type == "model" else "trainer.dataset.path"
    what = f"{repo_type} {repo!r}"
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    said = f"the hub answered {status}" if status is not None else "the hub refused it"
    if isinstance(error, GatedRepoError):
        return ConfigError(
            field,
            f"{what} is gated and {said}; give the trials a token with access "
            "(HF_TOKEN in trainer.env, from a secret)",
        )
    if isinstance(error, RepositoryNotFoundError):
        return ConfigError(
            field, f"{what} was not found on the hub ({said}; a private repository needs HF_TOKEN)"
        )
    if isinstance(error, RevisionNotFoundError):
        return ConfigError(field, f"{what}: no such revision ({said})")
    if isinstance(error, HfHubHTTPError):
        if status is not None and status in (401, 403):
            return ConfigError(field, f"{what}: {said} (not allowed; check HF_TOKEN)")
        return PrefetchFailed(f"cannot download {what}: {said}")
    if isinstance(error, LocalEntryNotFoundError):
        return PrefetchFailed(f"cannot download {what}: the hub could not be reached")
    return PrefetchFailed(f"cannot download {what}: {type(error).__name__}")


def fetch(repo: str, repo_type: RepoType) -> Fetched:
    """snapshot_download one repository into the cache HF_HOME names; raises ConfigError or PrefetchFailed."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.file_download import repo_folder_name
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()  # one summary line in the log, not a bar per file
    storage = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo, repo_type=repo_type)
    before = _blob_bytes(storage)
    try:
        snapshot = Path(snapshot_download(repo, repo_type=repo_type))
    except Exception as error:  # the hub client raises many kinds; _hub_reason sorts them
        raise _hub_reason(repo, repo_type, error) from None
    files = [path for path in snapshot.rglob("*") if path.is_file()]
    return Fetched(
        repo=repo,
        repo_type=repo_type,
        revision=snapshot.name,
        files=len(files),
        bytes=sum(path.stat().st_size for path in files),
        downloaded_bytes=max(0, _blob_bytes(storage) - before),
    )


def summary(fetched: Sequence[Fetched], seconds: float) -> dict[str, Any]:
    return {
        "status": "succeeded",
        "files": sum(item.files for item in fetched),
        "bytes": sum(item.bytes for item in fetched),
        "downloadedBytes": sum(item.downloaded_bytes for item in fetched),
        "seconds": round(seconds, 3),
        "repos": [item.as_json() for item in fetched],
    }


def _report(result: dict[str, Any], where: Path) -> None:
    text = json.dumps(result, separators=(",", ":"))
    print(text, flush=True)
    # Outside a pod there is usually no termination log; stdout has the result.
    with contextlib.suppress(OSError):
        where.write_text(text)


def _parse(argv: Sequence[str] | None) -> Any:
    parser = build_parser()
    parser.prog = "python -m kubetune_trainer prefetch"
    parser.description = (
        "Download the trainer block's model (and hub dataset) into HF_HOME, once for all trials."
    )
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    redaction.install(env)
    started = time.monotonic()
    flags = _parse(argv)
    where = termination_log(env, flags.termination_log)
    try:
        if env.get(conventions.ENV_HF_HUB_OFFLINE, "").strip().lower() in (
            "1",
            "true",
            "yes",
            "on",
        ):
            raise ConfigError(
                conventions.ENV_HF_HUB_OFFLINE, "is set; prefetch downloads from the hub"
            )
        spec = _trainer_spec(_load_trainer_block(flags, env), flags)
        fetched: list[Fetched] = []
        for repo, repo_type in repos_to_fetch(spec):
            item = fetch(repo, repo_type)
            log.info(
                f"prefetched {repo_type} {repo}@{item.revision[:12]}: {item.files} files, "
                f"{item.bytes:,} bytes ({item.downloaded_bytes:,} downloaded)"
            )
            fetched.append(item)
    except (ConfigError, PrefetchFailed) as error:
        failed = isinstance(error, PrefetchFailed)
        reason = str(error) if failed else f"config error: {error}"
        log.info(f"prefetch failed: {reason}")
        _report({"status": "failed", "reason": redaction.redact(reason)}, where)
        return conventions.EXIT_FAILED if failed else conventions.EXIT_CONFIG_ERROR
    _report(summary(fetched, time.monotonic() - started), where)
    return conventions.EXIT_OK
