"""scripts/gpu-check.sh end to end in its CPU dry run, so the GPU check is not broken
when a GPU machine is finally lent; and its shell scripts pass bash -n and shellcheck."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [ROOT / "scripts" / "gpu-check.sh", ROOT / "scripts" / "gpu-check-wheels.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_pass_shellcheck(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (scripts/system-deps.sh installs it)")
    done = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_dry_run_writes_every_step(tmp_path: Path) -> None:
    env = dict(os.environ, GPU_CHECK_DRY_RUN="1", GPU_CHECK_PYTHON=sys.executable)
    done = subprocess.run(
        ["bash", str(SCRIPTS[0]), "--out", str(tmp_path), "--timeout-scale", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["dry_run"] is True and report["device"] == "cpu"
    steps = report["steps"]
    assert list(steps) == ["env", "model", "lora", "qlora", "full", "throughput", "ddp"]
    assert steps["qlora"]["status"] == "skipped" and "CUDA" in steps["qlora"]["detail"]
    for name in ("env", "model", "lora", "full", "throughput", "ddp"):
        assert steps[name]["status"] == "ok", (name, steps[name])
    for name in ("lora", "full"):
        figures = steps[name]["figures"]
        assert figures["status"] == "succeeded" and figures["steps"] == 3
        assert figures["tokens_per_second"] > 0
    assert steps["ddp"]["figures"]["world_size"] == 2
    assert steps["ddp"]["figures"]["in_sync"] is True
    throughput = json.loads((tmp_path / "gpu-throughput.json").read_text())
    assert throughput["device"] == "cpu" and throughput["ours"]["tokens_per_second"] > 0
    assert "== GPU check summary" in done.stdout


def test_missing_package_is_named_not_a_traceback(tmp_path: Path) -> None:
    # A bare venv: the Python runs but holds none of the packages; the check must say so.
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True
    )
    env = dict(os.environ, GPU_CHECK_PYTHON=str(tmp_path / "bare" / "bin" / "python"))
    env.pop("PYTHONPATH", None)
    env.pop("GPU_CHECK_DRY_RUN", None)
    done = subprocess.run(
        ["bash", str(SCRIPTS[0]), "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    env_step = report["steps"]["env"]
    assert env_step["status"] == "failed"
    assert "missing Python packages" in env_step["detail"] and "torch" in env_step["detail"]
    assert report["steps"]["lora"]["status"] == "skipped"
    assert "missing Python packages" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
