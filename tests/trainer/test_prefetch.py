"""`python -m kubetune_trainer prefetch` against a loopback stand-in for the hub (fake_hub.py).

The download is huggingface_hub's real snapshot_download; the trial after it loads the model
through the trainer's normal from_pretrained path with HF_HUB_OFFLINE=1 and the hub gone.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune.spec.trainer import TrainerSpec
from kubetune.trial_result import TrialResult
from kubetune_trainer import tiny
from kubetune_trainer.prefetch import repos_to_fetch
from tests.trainer.fake_hub import FakeHub, Repo
from tests.trainer.trial_process import TrialProcess, trial_env

MODEL = "kubetune-test/tiny"


@pytest.fixture
def hub(tiny_cache: Path) -> Iterator[FakeHub]:
    folder = tiny.ensure_tiny(tiny_cache)
    hub = FakeHub(
        {
            MODEL: Repo(folder),
            "kubetune-test/gated-401": Repo(folder, gated_status=401),
            "kubetune-test/gated-403": Repo(folder, gated_status=403),
        }
    ).start()
    yield hub
    hub.stop()


def prefetch(tmp: Path, endpoint: str, *argv: str, **env: str) -> tuple[int, dict[str, Any], str]:
    """Exit status, the JSON result line on stdout, stderr."""
    full = dict(os.environ)
    full.pop("HF_HUB_OFFLINE", None)
    full.update(
        {
            "HF_ENDPOINT": endpoint,
            "HF_HOME": str(tmp / "hf"),
            conventions.ENV_TERMINATION_LOG: str(tmp / "termination-log"),
            **env,
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "kubetune_trainer", "prefetch", *argv],
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout + done.stderr
    return done.returncode, json.loads(lines[0]), done.stderr


def test_prefetch_fills_an_empty_cache_once(hub: FakeHub, tmp_path: Path) -> None:
    files = hub.repos[MODEL].files
    size = sum(path.stat().st_size for path in files.values())

    code, first, stderr = prefetch(tmp_path, hub.url, "--model", MODEL)
    assert code == conventions.EXIT_OK, stderr
    assert first["status"] == "succeeded"
    assert first["files"] == len(files) and first["bytes"] == size
    assert first["downloadedBytes"] == size
    assert first["repos"][0]["revision"] == hub.repos[MODEL].commit
    assert sorted(p.rsplit("/", 1)[-1] for p in hub.downloads()) == sorted(files)
    # The termination message is the same result, for the operator.
    assert json.loads((tmp_path / "termination-log").read_text()) == first

    served = len(hub.downloads())
    code, second, stderr = prefetch(tmp_path, hub.url, "--model", MODEL)
    assert code == conventions.EXIT_OK, stderr
    assert second["downloadedBytes"] == 0 and second["bytes"] == size
    assert len(hub.downloads()) == served  # nothing fetched twice


@pytest.mark.slow
def test_a_trial_trains_offline_from_the_prefetched_cache(hub: FakeHub, tmp_path: Path) -> None:
    code, _, stderr = prefetch(tmp_path, hub.url, "--model", MODEL)
    assert code == conventions.EXIT_OK, stderr
    endpoint = hub.url
    hub.stop()  # from here on, any hub request would fail

    trainer = {
        "model": MODEL,
        "method": "lora",
        "dataset": {"path": "synthetic:arithmetic", "evalSplit": "test[:16]"},
        "maxSteps": 2,
        "evalEvery": 2,
        "args": {"eval_max_samples": 8, "num_threads": 1},
    }
    env = trial_env(tmp_path, trainer, {"learning_rate": 0.002})
    env.update(
        {
            "HF_ENDPOINT": endpoint,
            "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_OFFLINE": "1",
            conventions.ENV_METRICS_PORT: "-1",
        }
    )
    trial = TrialProcess(env)
    try:
        code = trial.wait(timeout=180)
    finally:
        trial.kill()
    assert code == conventions.EXIT_OK, trial.stderr
    result = TrialResult.from_message((tmp_path / "termination-log").read_text())
    assert result.status == "succeeded" and result.steps == 2


@pytest.mark.parametrize("status", [401, 403])
def test_a_gated_model_fails_with_one_line_naming_it(
    hub: FakeHub, tmp_path: Path, status: int
) -> None:
    model = f"kubetune-test/gated-{status}"
    code, result, stderr = prefetch(tmp_path, hub.url, "--model", model)
    assert code == conventions.EXIT_CONFIG_ERROR
    assert result["status"] == "failed"
    reason = result["reason"]
    assert model in reason and f"answered {status}" in reason and "gated" in reason
    assert "\n" not in reason and "Traceback" not in stderr
    assert not hub.downloads()


def test_a_missing_model_names_the_hubs_404(hub: FakeHub, tmp_path: Path) -> None:
    code, result, stderr = prefetch(tmp_path, hub.url, "--model", "kubetune-test/nope")
    assert code == conventions.EXIT_CONFIG_ERROR
    assert "'kubetune-test/nope' was not found" in result["reason"]
    assert "answered 404" in result["reason"] and "Traceback" not in stderr


def test_an_unreachable_hub_is_a_failure_not_a_config_error(tmp_path: Path) -> None:
    dead = FakeHub().start()
    endpoint = dead.url
    dead.stop()
    code, result, stderr = prefetch(tmp_path, endpoint, "--model", MODEL)
    assert code == conventions.EXIT_FAILED
    assert MODEL in result["reason"] and "Traceback" not in stderr


def test_offline_mode_is_refused(tmp_path: Path) -> None:
    code, result, _ = prefetch(tmp_path, "http://127.0.0.1:9", "--model", MODEL, HF_HUB_OFFLINE="1")
    assert code == conventions.EXIT_CONFIG_ERROR
    assert result["reason"].startswith("config error: HF_HUB_OFFLINE:")


def test_only_hub_repositories_are_fetched(tmp_path: Path) -> None:
    local = tmp_path / "data.jsonl"
    local.write_text("{}\n")

    def repos(**block: Any) -> list[tuple[str, str]]:
        return [(repo, kind) for repo, kind in repos_to_fetch(TrainerSpec.model_validate(block))]

    assert repos(model="tiny") == []
    assert repos(model=str(tmp_path)) == []  # a local model folder
    assert repos(model="org/m", dataset={"path": str(local)}) == [("org/m", "model")]
    assert repos(model="tiny", dataset={"path": "org/data"}) == [("org/data", "dataset")]
    assert repos(model="tiny", dataset={"path": "synthetic:arithmetic"}) == []
