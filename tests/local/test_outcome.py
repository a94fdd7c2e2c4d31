from pathlib import Path

from kubetune import conventions
from kubetune.local.outcome import StopReason, classify, read_result
from kubetune.metrics import TrialReading
from kubetune.trial_result import TrialResult

OBJ = ["eval_loss"]


def result(status: str = "succeeded", **fields: object) -> TrialResult:
    return TrialResult.model_validate({"status": status, **fields})


def test_success_takes_the_result_file_over_the_last_scrape() -> None:
    final = result(
        metrics={"eval_loss": 1.25}, steps=40, intermediate={"eval_loss": [[20, 1.5], [40, 1.25]]}
    )
    outcome = classify(0, final, None, TrialReading({"eval_loss": 9.0}), OBJ)
    assert (outcome.kind, outcome.values, outcome.step) == ("complete", [1.25], 40)
    assert outcome.intermediate == [(20, 1.5), (40, 1.25)]


def test_template_without_result_uses_the_last_scrape() -> None:
    last = TrialReading({"eval_loss": 0.5, "eval_step": 30.0, "step": 31.0})
    outcome = classify(0, None, None, last, OBJ)
    assert (outcome.kind, outcome.values, outcome.step) == ("complete", [0.5], 30)


def test_exit_zero_without_objective_fails_with_the_reason() -> None:
    outcome = classify(0, None, None, TrialReading({"step": 3.0}), OBJ)
    assert outcome.kind == "fail"
    assert outcome.reason is not None and outcome.reason.startswith("NoObjective")


def test_a_trial_that_finished_while_being_stopped_is_kept() -> None:
    final = result(metrics={"eval_loss": 1.0}, steps=10)
    reasons: list[StopReason] = ["pruned", "timeout", "interrupted", "finished"]
    for reason in reasons:
        assert classify(0, final, reason, None, OBJ).kind == "complete"


def test_stopped_trials_by_stop_reason() -> None:
    stopped = result("stopped", intermediate={"eval_loss": [[5, 2.0]]})
    code = conventions.EXIT_STOPPED
    assert classify(code, stopped, "pruned", None, OBJ).kind == "prune"
    timeout = classify(code, stopped, "timeout", None, OBJ, timeout="30s")
    assert timeout.kind == "fail" and timeout.reason is not None
    assert timeout.reason.startswith("Timeout") and "30s" in timeout.reason
    interrupted = classify(-9, None, "interrupted", None, OBJ)
    assert (interrupted.kind, interrupted.reason) == ("requeue", "Interrupted")
    assert classify(code, stopped, "finished", None, OBJ).kind == "requeue"


def test_scraped_values_are_not_final_for_a_stopped_template_trial() -> None:
    last = TrialReading({"eval_loss": 0.5, "eval_step": 3.0})
    assert classify(-15, None, "pruned", last, OBJ).kind == "prune"
    assert classify(0, None, "pruned", last, OBJ).kind == "prune"


def test_failures_carry_the_trainer_reason_or_the_exit_code() -> None:
    failed = result("failed", reason="Diverged: loss is NaN at step 12")
    assert classify(1, failed, None, None, OBJ).reason == "Diverged: loss is NaN at step 12"
    assert classify(3, None, None, None, OBJ, log_tail="boom").reason == "Error: exit code 3: boom"
    assert classify(-9, None, None, None, OBJ).reason == "Error: killed by signal 9"


def test_non_finite_final_value_is_a_failure() -> None:
    outcome = classify(0, result(metrics={"eval_loss": float("nan")}), None, None, OBJ)
    assert outcome.kind == "fail" and outcome.reason is not None
    assert outcome.reason.startswith("NotFinite")


def test_multi_objective_needs_every_value() -> None:
    both = result(metrics={"eval_loss": 1.0, "eval_accuracy": 0.5}, steps=8)
    assert classify(0, both, None, None, ["eval_loss", "eval_accuracy"]).values == [1.0, 0.5]
    one = result(metrics={"eval_loss": 1.0})
    assert classify(0, one, None, None, ["eval_loss", "eval_accuracy"]).kind == "fail"


def test_read_result_prefers_the_termination_log(tmp_path: Path) -> None:
    assert read_result(tmp_path) is None
    (tmp_path / conventions.RESULT_FILE).write_text(result(metrics={"eval_loss": 2.0}).to_message())
    assert read_result(tmp_path) == result(metrics={"eval_loss": 2.0})
    (tmp_path / "termination-log").write_text(result(metrics={"eval_loss": 1.0}).to_message())
    found = read_result(tmp_path)
    assert found is not None and found.metrics == {"eval_loss": 1.0}
    (tmp_path / "termination-log").write_text("{not json")
    found = read_result(tmp_path)
    assert found is not None and found.metrics == {"eval_loss": 2.0}


def test_read_result_takes_only_the_given_attempts_result(tmp_path: Path) -> None:
    """A leftover process of attempt 1 writing late must not pass for attempt 2's result."""
    stale = result(metrics={"eval_loss": 9.0})
    (tmp_path / "termination-log.1-aaaa").write_text(stale.to_message())
    stale.attempt = "1-aaaa"
    (tmp_path / conventions.RESULT_FILE).write_text(stale.to_message())
    assert read_result(tmp_path, "2-bbbb") is None
    # result.json without an attempt: written by a trainer that does not know the token.
    (tmp_path / conventions.RESULT_FILE).write_text(result(metrics={"eval_loss": 8.0}).to_message())
    assert read_result(tmp_path, "2-bbbb") is None

    own = result(metrics={"eval_loss": 1.0}, attempt="2-bbbb")
    (tmp_path / conventions.RESULT_FILE).write_text(own.to_message())
    assert read_result(tmp_path, "2-bbbb") == own
    (tmp_path / "termination-log.2-bbbb").write_text(
        result(metrics={"eval_loss": 0.5}).to_message()
    )
    found = read_result(tmp_path, "2-bbbb")
    assert found is not None and found.metrics == {"eval_loss": 0.5}
