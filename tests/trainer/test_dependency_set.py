"""The trainer runs with only its own dependency set: kubetune's base plus the [trainer] extra.

The trainer image installs nothing of the operator's (kopf, optuna, matplotlib, kubernetes...);
these tests run the trainer in a subprocess where every operator-only distribution fails to
import, so a stray import of one fails here rather than in a built image.
"""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune.trial_result import TrialResult
from tests.dependency_sets import blocked_modules, run_blocked
from tests.trainer.trial_process import trial_env


def run_trainer(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_blocked("kubetune_trainer", argv, env, timeout)


def test_the_blocked_set_holds_the_operators_dependencies() -> None:
    blocked = set(blocked_modules())
    assert {"kopf", "optuna", "matplotlib", "kubernetes"} <= blocked
    assert not blocked & {"torch", "transformers", "peft", "pydantic", "yaml", "prometheus_client"}
    # The [trainer] extra's datasets and what it pulls in (pyarrow, pandas) are the trainer's.
    assert not blocked & {"datasets", "pyarrow", "pandas", "huggingface_hub"}


def probe(tmp: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Runs `code` as a module with only kopf blocked."""
    (tmp / "probe_absent.py").write_text(code)
    paths = [str(tmp), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return run_blocked("probe_absent", [], env, blocked=["kopf"], timeout=60)


def test_the_blocker_refuses_what_it_blocks(tmp_path: Path) -> None:
    done = probe(tmp_path, "import json\nimport kopf\n")
    assert "ModuleNotFoundError: No module named 'kopf' (blocked)" in done.stderr, done.stderr


def test_probes_see_a_blocked_package_as_absent(tmp_path: Path) -> None:
    done = probe(
        tmp_path,
        "import importlib.metadata as m, importlib.util as u\n"
        "assert u.find_spec('kopf') is None and u.find_spec('json') is not None\n"
        "m.version('kopf')\n",
    )
    assert "PackageNotFoundError: No package metadata was found for kopf" in done.stderr, (
        done.stderr
    )


def test_help_runs_without_the_operators_dependencies() -> None:
    done = run_trainer(["--help"])
    assert done.returncode == 0, done.stderr
    assert "Run one kubetune fine-tuning trial" in done.stdout


def test_config_error_path_runs_without_the_operators_dependencies(tmp_path: Path) -> None:
    env = trial_env(tmp_path, {"model": "tiny"}, {"learning_rat": 0.1})
    done = run_trainer([], env)
    assert done.returncode == conventions.EXIT_CONFIG_ERROR, done.stderr
    assert "parameters.learning_rat: unknown trainer argument" in done.stderr
    result = TrialResult.from_message((tmp_path / "termination-log").read_text())
    assert result.reason is not None and "learning_rat" in result.reason


def test_hub_datasets_load_without_the_operators_dependencies(tmp_path: Path) -> None:
    repo = tmp_path / "org" / "qa" / "data"
    repo.mkdir(parents=True)
    for split, n in [("train", 12), ("test", 3)]:
        rows = [{"prompt": f"{split} {i}", "completion": str(i)} for i in range(n)]
        (repo / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "probe_hub.py").write_text(
        "import os\n"
        f"os.chdir({str(tmp_path)!r})  # 'org/qa' resolves to the folder here\n"
        "from kubetune.spec import DatasetSpec\n"
        "from kubetune_trainer.data import load_splits\n"
        "spec = DatasetSpec(path='org/qa', train_split='train[:10]', eval_split='test')\n"
        "splits = load_splits(spec)\n"
        "print(len(splits.train), len(splits.eval))\n"
    )
    paths = [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(paths),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
    }
    done = run_blocked("probe_hub", [], env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10", "3"]


@pytest.mark.slow
def test_a_trial_trains_without_the_operators_dependencies(
    tiny_cache: Path, tmp_path: Path
) -> None:
    trainer: dict[str, Any] = {
        "model": "tiny",
        "dataset": {"path": "synthetic:arithmetic", "evalSplit": "test[:8]"},
        "maxSteps": 2,
        "evalEvery": 2,
        "args": {"eval_max_samples": 4, "num_threads": 1},
    }
    env = trial_env(tmp_path, trainer, {"lora_r": 4}, scrape_wait=0)
    env[conventions.ENV_CACHE_DIR] = str(tiny_cache)
    env[conventions.ENV_METRICS_PORT] = "-1"
    done = run_trainer([], env, timeout=300)
    assert done.returncode == conventions.EXIT_OK, done.stderr
    saved = json.loads((tmp_path / "out" / conventions.RESULT_FILE).read_text())
    assert saved["status"] == "succeeded" and saved["steps"] == 2
