"""The trainer never reports the values of its secret-sourced env vars: log, termination
message and result.json all carry them redacted."""

import io
import json
import subprocess
import sys
from pathlib import Path

from kubetune import conventions
from kubetune.trial_result import BestValue, TrialResult
from kubetune_trainer.redaction import RedactingStream, Redactor, secret_names
from tests.trainer.trial_process import trial_env

SECRET = "s3cr3t-Tok3n-7f9a"
HUB_TOKEN = "hf_abcdefghijklmnop"
MASK = conventions.REDACTED


def secret_env(tmp: Path, trainer: dict[str, object], params: dict[str, object]) -> dict[str, str]:
    env = trial_env(tmp, trainer, params)
    env[conventions.ENV_SECRET_ENV] = "API_KEY, OTHER"
    env["API_KEY"] = SECRET
    env["HF_TOKEN"] = HUB_TOKEN  # well known: redacted without being named
    env[conventions.ENV_METRICS_PORT] = "-1"
    return env


def reported(tmp: Path, done: subprocess.CompletedProcess[str]) -> list[str]:
    """Everything the trial reported: its log, termination message and result.json."""
    return [
        done.stdout + done.stderr,
        (tmp / "termination-log").read_text(),
        (tmp / "out" / conventions.RESULT_FILE).read_text(),
    ]


def test_names_come_from_the_pod_and_the_well_known_list() -> None:
    names = secret_names({conventions.ENV_SECRET_ENV: "A, B,,"})
    assert {"A", "B", "HF_TOKEN"} <= names and "" not in names


def test_every_spelling_of_a_value_is_replaced_longest_first() -> None:
    quoted = 'qu"ote\\'
    redact = Redactor([SECRET, "ab", quoted, ""])
    text = "token=" + SECRET + " short=ab json=" + json.dumps(quoted) + " repr=" + repr(quoted)
    assert redact(text) == f"token={MASK} short={MASK} json=\"{MASK}\" repr='{MASK}'"
    assert Redactor([SECRET[:4], SECRET])(SECRET) == MASK  # no tail of the longer one left
    assert Redactor([])("unchanged") == "unchanged"


def test_a_result_is_redacted_in_its_strings_but_not_its_metric_names() -> None:
    redact = Redactor(["loss-token"])
    result = TrialResult(
        status="failed",
        reason="HTTP 401 for ?key=loss-token",
        metrics={"eval_loss": 1.0},
        best=BestValue(metric="eval_loss", value=1.0, step=2),
        intermediate={"eval_loss": [(2, 1.0)]},
        adapter_path="/out/loss-token",
    )
    clean = redact.result(result)
    assert clean.reason == f"HTTP 401 for ?key={MASK}" and clean.adapter_path == f"/out/{MASK}"
    assert clean.metrics == result.metrics and clean.intermediate == result.intermediate


def test_a_redacting_stream_redacts_what_is_written_through_it() -> None:
    from kubetune_trainer import redaction

    sink = io.StringIO()
    stream = RedactingStream(sink)
    redaction._active = Redactor([SECRET])
    try:
        print(f"Traceback: bad token {SECRET}", file=stream)
    finally:
        redaction._active = None
    assert sink.getvalue() == f"Traceback: bad token {MASK}\n"


def test_a_config_error_that_echoes_a_secret_reports_it_redacted(tmp_path: Path) -> None:
    env = secret_env(tmp_path, {"model": "tiny"}, {"lora_r": SECRET, "lora_dropout": HUB_TOKEN})
    done = subprocess.run(
        [sys.executable, "-m", "kubetune_trainer"], env=env, capture_output=True, text=True
    )
    assert done.returncode == conventions.EXIT_CONFIG_ERROR, done.stderr
    assert f"parameters.lora_r: must be an integer, got '{MASK}'" in done.stderr
    for text in reported(tmp_path, done):
        assert SECRET not in text and HUB_TOKEN not in text
        assert MASK in text


# Any failure inside the trial: the exception's message becomes the reason and its
# traceback goes to the log, so a library error quoting a token would carry it everywhere.
_FAILING_TRIAL = """
import os, sys
from kubetune_trainer import cli

def fail(config, metrics, progress, stop):
    key, token = os.environ["API_KEY"], os.environ["HF_TOKEN"]
    print(f"downloading with {token}", file=sys.stderr)  # a library's own print
    raise RuntimeError(f"401 Unauthorized: https://hub.example/x?key={key}&t={token}")

cli._run_trial = fail
sys.exit(cli.run([]))
"""


def test_a_trial_whose_failure_quotes_a_secret_reports_it_redacted(tmp_path: Path) -> None:
    env = secret_env(tmp_path, {"model": "tiny", "maxSteps": 1}, {})
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_TRIAL], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == conventions.EXIT_FAILED, done.stderr
    assert "Traceback" in done.stderr and f"downloading with {MASK}" in done.stderr
    result = TrialResult.from_message((tmp_path / "termination-log").read_text())
    assert result.reason == (
        f"RuntimeError: 401 Unauthorized: https://hub.example/x?key={MASK}&t={MASK}"
    )
    for text in reported(tmp_path, done):
        assert SECRET not in text and HUB_TOKEN not in text
