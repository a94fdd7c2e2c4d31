"""Run `kubetune` as a user would: a separate process, output piped (so: plain log lines)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def kubetune(
    *args: str, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubetune", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=_env(),
    )


def start_kubetune(
    *args: str,
    cwd: Path | None = None,
    via: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """kubetune in the background; via: a script that runs the CLI (e.g. full_disk.py)."""
    entry = [str(via)] if via is not None else ["-m", "kubetune"]
    return subprocess.Popen(
        [sys.executable, *entry, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env=_env(extra_env),
    )


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def read_state(output: Path) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((output / "state.json").read_text())
    return loaded
