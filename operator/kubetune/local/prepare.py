"""One-time work before the first trial: building the built-in `tiny` model, or
downloading a hub model (and dataset) into the Hugging Face cache.

The trainer builds the tiny model on first use, under a file lock; done inside a trial,
that would count against trialTimeout and leave every parallel trial waiting. A hub
model downloaded by each trial would be downloaded by every parallel trial at once. So
a local run does either first, once, outside any trial.
"""

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from kubetune import conventions
from kubetune.spec import SweepSpec, parse_duration
from kubetune.spec.hub import RepoType, hub_repos, offline_set
from kubetune.spec.trainer import DEFAULT_PREFETCH_TIMEOUT
from kubetune.text import excerpt

_TRUE = ("1", "true", "yes", "on")

_BUILD_TINY = (
    "import os\n"
    "from kubetune_trainer.config import default_cache_dir\n"
    "from kubetune_trainer.tiny import ensure_tiny\n"
    "print(ensure_tiny(default_cache_dir(os.environ)))\n"
)


def needs_tiny(spec: SweepSpec) -> bool:
    return spec.trainer is not None and spec.trainer.model == conventions.TINY_MODEL


def local_prefetch(spec: SweepSpec, env: Mapping[str, str]) -> list[tuple[str, RepoType]]:
    """The hub repositories a local run downloads before its trials (none when offline)."""
    if spec.trainer is None or offline_set(spec.trainer):
        return []
    if env.get(conventions.ENV_HF_HUB_OFFLINE, "").strip().lower() in _TRUE:
        return []
    return hub_repos(spec.trainer, exists=lambda path: Path(path).expanduser().exists())


# After SIGTERM, how long a process past its deadline gets before SIGKILL (a download
# stuck in a read may not get to its signal handler).
_KILL_AFTER_SECONDS = 5.0


def prefetch_timeout(spec: SweepSpec) -> str:
    """trainer.cache.prefetchTimeout (its default without trainer.cache)."""
    cache = spec.trainer.cache if spec.trainer is not None else None
    return cache.prefetch_timeout if cache is not None else DEFAULT_PREFETCH_TIMEOUT


async def _run(
    argv: list[str], env: Mapping[str, str], stop: asyncio.Event, deadline: float | None = None
) -> tuple[int, bytes, bytes] | None:
    """Run argv to its end: (exit code, stdout, stderr), or None when stop is set first (the
    process is then terminated, so a lock it holds is released for the next run).
    TimeoutError when it still runs after `deadline` seconds (it is then ended)."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    done = asyncio.create_task(process.communicate())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([done, stopper], timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not done.done():
        with contextlib.suppress(ProcessLookupError):  # it ended just now
            process.terminate()
        try:
            await asyncio.wait_for(asyncio.shield(done), _KILL_AFTER_SECONDS)
        except TimeoutError:
            process.kill()
            await done
        if not stop.is_set():
            raise TimeoutError(f"still running after {deadline:g}s")
        return None
    stdout, stderr = done.result()
    return process.returncode or 0, stdout, stderr


async def prefetch(
    env: Mapping[str, str], stop: asyncio.Event, timeout: str = DEFAULT_PREFETCH_TIMEOUT
) -> str | None:
    """`python -m kubetune_trainer prefetch` with the trial's env; None when the cache is
    filled, else one line saying why not ("interrupted" when stop is set first). `timeout`:
    trainer.cache.prefetchTimeout (a duration), as for the operator's prefetch pod."""
    argv = [sys.executable, "-m", "kubetune_trainer", "prefetch", "--termination-log"]
    try:
        # Its result is its stdout line here.
        ran = await _run([*argv, os.devnull], env, stop, parse_duration(timeout))
    except TimeoutError:
        return (
            f"prefetch failed: the download did not finish within "
            f"trainer.cache.prefetchTimeout ({timeout})"
        )
    if ran is None:
        return "interrupted"
    code, stdout, stderr = ran
    if code == 0:
        return None
    lines = stdout.decode(errors="replace").strip().splitlines()
    reason = ""
    try:
        said = json.loads(lines[-1]) if lines else {}
        reason = str(said.get("reason") or "") if isinstance(said, dict) else ""
    except ValueError:
        pass
    if not reason:
        reason = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-3:])
    return f"prefetch failed (exit {code}): {excerpt(reason, 300)}"


async def build_tiny(env: Mapping[str, str], stop: asyncio.Event) -> str | None:
    """Build (or find) the tiny model; None when ready, else why not.

    Returns "interrupted" when stop is set first; the builder is then terminated and
    its lock released, so the next run starts the build again.
    """
    ran = await _run([sys.executable, "-c", _BUILD_TINY], env, stop)
    if ran is None:
        return "interrupted"
    code, stdout, stderr = ran
    if code != 0:
        output = (stdout + stderr).decode(errors="replace").strip()
        tail = " | ".join(output.splitlines()[-3:])
        return f"building the tiny model failed (exit {code}): {tail}"
    return None
