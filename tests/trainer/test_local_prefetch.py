"""`kubetune run` downloads a sweep's hub model once, before its parallel trials, with the
real `python -m kubetune_trainer prefetch` against the loopback hub (fake_hub.py)."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubetune_trainer import tiny
from tests.local.cli import kubetune
from tests.trainer.fake_hub import FakeHub, Repo
from tests.trainer.fake_hub import silent_hub as silent_server

MODEL = "kubetune-test/tiny"
GATED = "kubetune-test/gated-403"


@pytest.fixture
def fake_hub(tiny_cache: Path) -> Iterator[FakeHub]:
    folder = tiny.ensure_tiny(tiny_cache)
    hub = FakeHub({MODEL: Repo(folder), GATED: Repo(folder, gated_status=403)}).start()
    yield hub
    hub.stop()


def _run(
    tmp_path: Path,
    hub: FakeHub | str,
    model: str,
    max_trials: int,
    cache: dict[str, str] | None = None,
) -> tuple[int, str, Path]:
    sweep = {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "hub-model"},
        "spec": {
            "objective": {"metric": "eval_loss", "direction": "minimize"},
            "algorithm": {"name": "random", "seed": 3},
            "budget": {"maxTrials": max_trials, "parallelism": 2, "trialTimeout": "5m"},
            "parameters": [{"name": "learning_rate", "type": "float", "min": 1e-3, "max": 1e-2}],
            "trainer": {
                "model": model,
                "method": "lora",
                "dataset": {"path": "synthetic:arithmetic", "evalSplit": "test[:8]"},
                "maxSteps": 2,
                "evalEvery": 2,
                "args": {"eval_max_samples": 4, "num_threads": 1},
            },
            "metrics": {"interval": "1s"},
        },
    }
    if cache is not None:
        sweep["spec"]["trainer"]["cache"] = cache  # type: ignore[index]
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    output = tmp_path / "out"
    saved = {k: os.environ.get(k) for k in ("HF_ENDPOINT", "HF_HOME", "HF_HUB_OFFLINE")}
    url = hub if isinstance(hub, str) else hub.url
    os.environ.update({"HF_ENDPOINT": url, "HF_HOME": str(tmp_path / "hf")})
    os.environ.pop("HF_HUB_OFFLINE", None)
    try:
        done = kubetune("run", str(path), "--output", str(output), timeout=600)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return done.returncode, done.stdout + done.stderr, output


def test_a_refused_prefetch_is_one_line_and_no_trial_runs(
    fake_hub: FakeHub, tmp_path: Path
) -> None:
    code, text, output = _run(tmp_path, fake_hub, GATED, max_trials=2)
    assert code != 0
    lines = [line for line in text.splitlines() if "prefetch failed" in line]
    assert len(lines) == 1, text
    assert "(exit 2)" in lines[0] and GATED in lines[0] and "gated" in lines[0]
    assert "Traceback" not in text
    assert not fake_hub.downloads()
    assert not list((output / "trials").glob("*/trial.log"))  # no trial started


@pytest.mark.slow
def test_parallel_trials_share_one_download(fake_hub: FakeHub, tmp_path: Path) -> None:
    code, text, _output = _run(tmp_path, fake_hub, MODEL, max_trials=2)
    assert code == 0, text
    assert "downloading model kubetune-test/tiny once" in text
    files = sorted(fake_hub.repos[MODEL].files)
    # Each file once: by the prefetch, never again by either of the two parallel trials.
    assert sorted(p.rsplit("/", 1)[-1] for p in fake_hub.downloads()) == files


@pytest.fixture
def silent_hub() -> Iterator[str]:
    with silent_server() as url:
        yield url


def test_a_prefetch_past_its_deadline_is_one_line_and_no_trial_runs(
    silent_hub: str, tmp_path: Path
) -> None:
    # trainer.cache's volume is the operator's; locally only its prefetchTimeout applies.
    cache = {"claimName": "models", "prefetchTimeout": "3s"}
    started = time.monotonic()
    code, text, output = _run(tmp_path, silent_hub, MODEL, max_trials=2, cache=cache)
    took = time.monotonic() - started
    assert code != 0
    lines = [line for line in text.splitlines() if "prefetch failed" in line]
    assert len(lines) == 1, text
    assert "did not finish within trainer.cache.prefetchTimeout (3s)" in lines[0]
    assert "Traceback" not in text
    assert not list((output / "trials").glob("*/trial.log"))  # no trial started
    # The deadline, the stop (at most 5s to SIGKILL) and the CLI's start; not the hub's
    # read timeouts (huggingface_hub waits 10s per read, with retries).
    assert took < 40, f"{took:.0f}s"
    print(f"stuck prefetch ended after {took:.1f}s (deadline 3s)")
