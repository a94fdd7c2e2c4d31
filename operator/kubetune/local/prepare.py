"""One-time work before the first trial: building the built-in `tiny` model.

The trainer builds it on first use, under a file lock; done inside a trial, that
would count against trialTimeout and leave every parallel trial waiting. So a local
run builds it first, once, outside any trial.
"""

import asyncio
import sys
from collections.abc import Mapping

from kubetune import conventions
from kubetune.spec import SweepSpec

_BUILD_TINY = (
    "import os\n"
    "from kubetune_trainer.config import default_cache_dir\n"
    "from kubetune_trainer.tiny import ensure_tiny\n"
    "print(ensure_tiny(default_cache_dir(os.environ)))\n"
)


def needs_tiny(spec: SweepSpec) -> bool:
    return spec.trainer is not None and spec.trainer.model == conventions.TINY_MODEL


async def build_tiny(env: Mapping[str, str], stop: asyncio.Event) -> str | None:
    """Build (or find) the tiny model; None when ready, else why not.

    Returns "interrupted" when stop is set first; the builder is then terminated and
    its lock released, so the next run starts the build again.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _BUILD_TINY,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    done = asyncio.create_task(process.communicate())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait([done, stopper], return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not done.done():
        process.terminate()
        await done
        return "interrupted"
    output = done.result()[0].decode(errors="replace").strip()
    if process.returncode != 0:
        tail = " | ".join(output.splitlines()[-3:])
        return f"building the tiny model failed (exit {process.returncode}): {tail}"
    return None
