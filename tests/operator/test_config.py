"""Operator options: the pod policy and the bind address, from options or the environment."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubetune import conventions
from kubetune.operator.options import add_arguments, config_from
from kubetune.policy.pod_policy import PodPolicy, PodPolicyError

REPO = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_restricted_and_every_interface(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(conventions.ENV_POD_POLICY, raising=False)
    monkeypatch.delenv(conventions.ENV_BIND_ADDRESS, raising=False)
    config = config_from(_parse())
    assert config.pod_policy == PodPolicy(level="restricted", allowed_service_accounts=())
    assert config.bind_address == "0.0.0.0"


def test_environment_then_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    policy = {"level": "baseline", "allowedServiceAccounts": ["trainer"]}
    monkeypatch.setenv(conventions.ENV_POD_POLICY, json.dumps(policy))
    monkeypatch.setenv(conventions.ENV_BIND_ADDRESS, "10.0.0.5")
    config = config_from(_parse())
    assert config.pod_policy == PodPolicy(level="baseline", allowed_service_accounts=("trainer",))
    assert config.bind_address == "10.0.0.5"
    file = tmp_path / "policy.yaml"
    file.write_text("level: privileged\n")
    config = config_from(_parse("--pod-policy", str(file), "--bind-address", "127.0.0.1"))
    assert config.pod_policy == PodPolicy(level="privileged")
    assert config.bind_address == "127.0.0.1"


def test_bad_policy_in_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(conventions.ENV_POD_POLICY, '{"level": "everything"}')
    with pytest.raises(PodPolicyError) as error:
        config_from(_parse())
    assert error.value.source == f"${conventions.ENV_POD_POLICY}"
    assert error.value.problems[0].startswith("level: ")


def _start_operator(*args: str, unset: str) -> subprocess.CompletedProcess[str]:
    """The real operator process started with ``args`` and without the variable ``unset``."""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'operator'}:{REPO / 'trainer-image'}")
    env.pop(unset, None)
    return subprocess.run(
        [sys.executable, "-m", "kubetune.operator", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_operator_refuses_to_start_with_a_bad_policy() -> None:
    done = _start_operator("--pod-policy", "lenient", unset=conventions.ENV_POD_POLICY)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "--pod-policy: 'lenient' is not a level (privileged, baseline, restricted) nor a policy file"
    ]


def test_nodes_workload_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert config_from(_parse()).nodes_workload == "auto"
    assert config_from(_parse("--nodes-workload", "jobset")).nodes_workload == "jobset"
    assert config_from(_parse("--nodes-workload", "job")).nodes_workload == "job"
    with pytest.raises(SystemExit):
        _parse("--nodes-workload", "pytorchjob")
    assert "--nodes-workload: invalid choice: 'pytorchjob'" in capsys.readouterr().err


def test_engine_threads_default_environment_then_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(conventions.ENV_ENGINE_THREADS, raising=False)
    assert config_from(_parse()).engine_threads == 2
    monkeypatch.setenv(conventions.ENV_ENGINE_THREADS, "4")
    assert config_from(_parse()).engine_threads == 4
    assert config_from(_parse("--engine-threads", "1")).engine_threads == 1


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_bad_engine_threads_name_the_option_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.delenv(conventions.ENV_ENGINE_THREADS, raising=False)
    with pytest.raises(ValueError) as error:
        config_from(_parse("--engine-threads", raw))
    assert (
        str(error.value) == f"--engine-threads: must be a whole number of at least 1, got {raw!r}"
    )
    monkeypatch.setenv(conventions.ENV_ENGINE_THREADS, raw)
    with pytest.raises(ValueError) as error:
        config_from(_parse())
    assert str(error.value) == (
        f"${conventions.ENV_ENGINE_THREADS}: must be a whole number of at least 1, got {raw!r}"
    )


def test_operator_refuses_to_start_with_no_engine_threads() -> None:
    done = _start_operator("--engine-threads", "0", unset=conventions.ENV_ENGINE_THREADS)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "kubetune operator: --engine-threads: must be a whole number of at least 1, got '0'"
    ]
