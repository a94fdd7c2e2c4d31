"""Resolving one trial's configuration from environment and flags."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubetune import conventions
from kubetune.trial_result import TrialResult
from kubetune_trainer.config import resolve
from kubetune_trainer.errors import ConfigError

TRAINER = {
    "model": "tiny",
    "method": "lora",
    "dataset": {"path": "synthetic:reverse", "evalSplit": "test[:50]"},
    "maxSteps": 30,
    "evalEvery": 10,
    "args": {"learning_rate": 1e-3, "lora_r": 8},
    "outputDir": "/data/out",
}


def env(**extra: str) -> dict[str, str]:
    base = {
        conventions.ENV_TRAINER_CONFIG: json.dumps(TRAINER),
        conventions.ENV_PARAMS: json.dumps({"learning_rate": 3e-4, "lora_dropout": 0.1}),
        conventions.ENV_SWEEP: "demo",
        conventions.ENV_TRIAL: "demo-t0003",
        conventions.ENV_NAMESPACE: "ml",
        conventions.ENV_METRICS_PORT: "9500",
        conventions.ENV_SCRAPE_WAIT: "2.5",
    }
    base.update(extra)
    return base


def test_env_configures_the_trial_and_parameters_override_args() -> None:
    config = resolve([], env())
    assert config.trainer.dataset.path == "synthetic:reverse"
    assert config.trainer.eval_every == 10
    assert config.max_steps == 30
    assert config.args.learning_rate == 3e-4  # the parameter wins over trainer.args
    assert config.args.lora_r == 8  # kept from trainer.args
    assert config.args.lora_dropout == 0.1
    assert config.params == {"learning_rate": 3e-4, "lora_dropout": 0.1}
    assert config.identity.labels() == {"sweep": "demo", "trial": "demo-t0003", "namespace": "ml"}
    assert config.metrics_port == 9500
    assert config.metrics_addr == "0.0.0.0"
    assert config.scrape_wait_seconds == 2.5
    assert config.output_dir == Path("/data/out/demo-t0003")  # one folder per trial
    assert config.termination_log == Path(conventions.DEFAULT_TERMINATION_LOG)


def test_flags_win_over_environment() -> None:
    argv = [
        "--param", "learning_rate=1e-5",
        "--param", "packing=true",
        "--max-steps", "7",
        "--dataset", "synthetic:arithmetic",
        "--metrics-port", "-1",
        "--output-dir", "out",
        "--termination-log", "term.log",
    ]  # fmt: skip
    config = resolve(argv, env(**{conventions.ENV_OUTPUT_DIR: "/ignored"}))
    assert config.args.learning_rate == 1e-5
    assert config.args.packing is True
    assert config.max_steps == 7
    assert config.trainer.dataset.path == "synthetic:arithmetic"
    assert config.trainer.dataset.eval_split == "test[:50]"  # the rest of the block stays
    assert config.metrics_port is None
    assert config.output_dir == Path("out")
    assert config.termination_log == Path("term.log")


def test_launcher_output_dir_is_taken_verbatim() -> None:
    config = resolve([], env(**{conventions.ENV_OUTPUT_DIR: "/tmp/x/t1"}))
    assert config.output_dir == Path("/tmp/x/t1")


def test_defaults_without_any_configuration() -> None:
    config = resolve([], {})
    assert config.trainer.model == "tiny"
    assert config.trainer.dataset.path == "synthetic:arithmetic"
    assert config.metrics_port == conventions.DEFAULT_METRICS_PORT


def test_config_file_yaml(tmp_path: Path) -> None:
    path = tmp_path / "trainer.yaml"
    path.write_text("model: tiny\nmethod: full\nmaxSteps: 5\nargs: {weight_decay: 0.1}\n")
    config = resolve(["--config", str(path)], {})
    assert config.trainer.method == "full"
    assert config.args.weight_decay == 0.1


@pytest.mark.parametrize(
    ("argv", "extra", "message"),
    [
        (
            [],
            {conventions.ENV_PARAMS: '{"learning_rat": 1}'},
            "parameters.learning_rat: unknown trainer argument",
        ),
        (
            [],
            {conventions.ENV_PARAMS: '{"lora_r": "big"}'},
            "parameters.lora_r: must be an integer",
        ),
        (
            [],
            {conventions.ENV_PARAMS: "[1, 2]"},
            f"{conventions.ENV_PARAMS}: must be a JSON object",
        ),
        ([], {conventions.ENV_PARAMS: "{oops"}, f"{conventions.ENV_PARAMS}: is not valid JSON"),
        (
            [],
            {conventions.ENV_TRAINER_CONFIG: '{"method": "lorax"}'},
            "trainer: method: must be one of",
        ),
        (
            [],
            {conventions.ENV_TRAINER_CONFIG: '{"args": {"lr": 1}}'},
            "trainer.args.lr: unknown trainer argument",
        ),
        (
            [],
            {conventions.ENV_METRICS_PORT: "http"},
            f"{conventions.ENV_METRICS_PORT}: must be an integer port",
        ),
        (
            [],
            {conventions.ENV_SCRAPE_WAIT: "soon"},
            f"{conventions.ENV_SCRAPE_WAIT}: must be a number",
        ),
        (["--param", "novalue"], {}, "--param: must look like NAME=VALUE"),
        (["--param", "from_scratch=true"], {}, "trainer.args.from_scratch: needs method: full"),
    ],
)
def test_bad_configuration_names_the_field(
    argv: list[str], extra: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve(argv, env(**extra))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_config_file_may_be_a_whole_sweep(tmp_path: Path) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        "apiVersion: kubetune.dev/v1alpha1\nkind: HyperparameterSweep\nmetadata: {name: s}\n"
        "spec:\n  trainer: {model: tiny, maxSteps: 9, args: {lora_r: 4}}\n"
    )
    config = resolve(["--config", str(path), "--param", "learning_rate=0.01"], {})
    assert (config.max_steps, config.args.lora_r, config.args.learning_rate) == (9, 4, 0.01)
    path.write_text("kind: HyperparameterSweep\nspec: {template: {spec: {}}}\n")
    with pytest.raises(ConfigError, match=r"has no spec\.trainer block"):
        resolve(["--config", str(path)], {})


def test_the_launch_attempt_reaches_the_config_and_a_config_failure_result(
    tmp_path: Path,
) -> None:
    assert resolve([], env()).attempt is None
    assert resolve([], env(**{conventions.ENV_ATTEMPT: "2-ab12"})).attempt == "2-ab12"
    # A config error is reported before any heavy import: a quick real trainer process.
    trial_env = {
        **os.environ,
        **env(**{conventions.ENV_ATTEMPT: "2-ab12"}),
        conventions.ENV_PARAMS: json.dumps({"learning_rate": "fast"}),
        conventions.ENV_OUTPUT_DIR: str(tmp_path),
        conventions.ENV_TERMINATION_LOG: str(tmp_path / "termination-log.2-ab12"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "kubetune_trainer"], env=trial_env, capture_output=True, timeout=120
    )
    assert done.returncode == conventions.EXIT_CONFIG_ERROR, done.stderr
    for name in ("termination-log.2-ab12", conventions.RESULT_FILE):
        result = TrialResult.from_message((tmp_path / name).read_text())
        assert (result.status, result.attempt) == ("failed", "2-ab12")
