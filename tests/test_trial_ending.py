"""One judgment of an ended trial: the rules, and both runtimes reaching the same verdict."""

from __future__ import annotations

import dataclasses
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from kubetune import conventions
from kubetune.local.outcome import exit_status, process_ending, read_result
from kubetune.metrics import TrialReading
from kubetune.operator.pod_state import view
from kubetune.spec import Objective
from kubetune.trial_ending import StopReason, TrialEnding, Verdict, judge, note_extremes
from kubetune.trial_result import TrialResult

OBJ = ["eval_loss"]


def result(status: str = "succeeded", **fields: object) -> TrialResult:
    return TrialResult.model_validate({"status": status, **fields})


def ending(exit_code: int | None = 0, **fields: Any) -> TrialEnding:
    return TrialEnding(exit_code, **fields)


def word(verdict: Verdict) -> str:
    return (verdict.reason or "").split(":", 1)[0]


def test_success_takes_the_result_over_the_last_reading() -> None:
    final = result(
        metrics={"eval_loss": 1.25}, steps=40, intermediate={"eval_loss": [[20, 1.5], [40, 1.25]]}
    )
    verdict = judge(ending(result=final, last=TrialReading({"eval_loss": 9.0})), OBJ)
    assert (verdict.kind, verdict.values, verdict.step) == ("complete", [1.25], 40)
    assert verdict.intermediate == [(20, 1.5), (40, 1.25)]


def test_without_a_result_the_last_reading_is_final_only_when_trusted() -> None:
    last = TrialReading({"eval_loss": 0.5, "eval_step": 30.0, "step": 31.0})
    verdict = judge(ending(last=last), OBJ)
    assert (verdict.kind, verdict.values, verdict.step) == ("complete", [0.5], 30)
    # A gauge at step 0 is no evaluation, and a reading from before an outage is no final one.
    assert word(judge(ending(last=TrialReading({"eval_loss": 0.0, "step": 0.0})), OBJ)) == (
        "NoObjective"
    )
    assert judge(ending(last=last, last_is_final=False), OBJ).kind == "fail"


def test_a_value_missing_from_the_result_comes_from_the_reading() -> None:
    final = result(metrics={"eval_loss": 1.0}, steps=8)
    last = TrialReading({"eval_accuracy": 0.5, "eval_step": 8.0})
    verdict = judge(ending(result=final, last=last), ["eval_loss", "eval_accuracy"])
    assert (verdict.kind, verdict.values) == ("complete", [1.0, 0.5])
    assert judge(ending(result=final), ["eval_loss", "eval_accuracy"]).kind == "fail"


def test_a_trial_that_finished_while_being_stopped_is_kept() -> None:
    final = result(metrics={"eval_loss": 1.0}, steps=10)
    reasons: list[StopReason] = ["pruned", "timeout", "interrupted", "suspended", "finished"]
    for reason in reasons:
        assert judge(ending(result=final, stop=reason), OBJ).kind == "complete"


def test_kubetune_stops_by_reason() -> None:
    stopped = result("stopped", intermediate={"eval_loss": [[5, 2.0]]})
    code = conventions.EXIT_STOPPED
    assert judge(ending(code, result=stopped, stop="pruned"), OBJ).kind == "prune"
    timeout = judge(ending(code, result=stopped, stop="timeout", timeout="30s"), OBJ)
    assert (timeout.kind, word(timeout)) == ("fail", "Timeout") and "30s" in str(timeout.reason)
    for stop, reason in [("interrupted", "Interrupted"), ("suspended", "Suspended")]:
        verdict = judge(ending(137, stop=stop), OBJ)
        assert (verdict.kind, verdict.reason, verdict.disruption) == ("requeue", reason, False)
    # Scraped values are not final for a trial kubetune stopped.
    last = TrialReading({"eval_loss": 0.5, "eval_step": 3.0})
    assert judge(ending(0, last=last, stop="pruned"), OBJ).kind == "prune"


def test_only_a_real_disruption_is_a_capped_requeue() -> None:
    evicted = judge(ending(143, disruption="Evicted"), OBJ)
    assert (evicted.kind, evicted.reason, evicted.disruption) == ("requeue", "Evicted", True)
    # SIGTERM or SIGKILL with no disruption behind it (a liveness probe, a watchdog): a failure.
    assert (judge(ending(143), OBJ).kind, word(judge(ending(143), OBJ))) == ("fail", "Stopped")
    assert (judge(ending(137), OBJ).kind, word(judge(ending(137), OBJ))) == ("fail", "Killed")
    assert word(judge(ending(137, oom=True), OBJ)) == "OOMKilled"


def test_failures_carry_a_vocabulary_word_and_a_bounded_excerpt() -> None:
    failed = result("failed", reason="Diverged: loss is NaN at step 12")
    assert judge(ending(1, result=failed), OBJ).reason == (
        "TrialFailed: Diverged: loss is NaN at step 12"
    )
    assert judge(ending(3, detail="boom"), OBJ).reason == "Error: exit code 3: boom"
    hostile = result("failed", reason="token=hf_abcdefghijklmnopqrstuvwxyz0123 " + "x" * 5000)
    reason = str(judge(ending(1, result=hostile), OBJ).reason)
    assert "hf_abcdefghij" not in reason and len(reason) < 200 and reason.startswith("TrialFailed")


def test_non_finite_final_value_is_a_failure() -> None:
    verdict = judge(ending(result=result(metrics={"eval_loss": float("nan")})), OBJ)
    assert (verdict.kind, word(verdict)) == ("fail", "NotFinite")


def test_a_gap_in_the_readings_means_rerun_not_failure() -> None:
    verdict = judge(ending(0, metrics_gap=True), OBJ)
    assert (verdict.kind, word(verdict), verdict.disruption) == ("requeue", "MetricsLost", True)


# ---- both runtimes, same endings --------------------------------------------------------


def pod_of(exit_code: int, message: str | None, phase: str | None = None) -> dict[str, Any]:
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": "Error" if exit_code else "Completed",
    }
    if message is not None:
        terminated["message"] = message
    return {
        "metadata": {
            "name": "s-t0001",
            "uid": "u1",
            "annotations": {"kubetune.dev/attempt": "1", "kubetune.dev/container": "trial"},
        },
        "status": {
            "phase": phase or ("Succeeded" if exit_code == 0 else "Failed"),
            "containerStatuses": [{"name": "trial", "state": {"terminated": terminated}}],
        },
    }


SAME_ENDINGS: list[tuple[str, int, TrialResult | None, TrialReading | None, tuple[str, str]]] = [
    ("result", 0, result(metrics={"eval_loss": 0.7}, steps=9), None, ("complete", "")),
    ("metrics only", 0, None, TrialReading({"eval_loss": 0.6, "eval_step": 5.0}), ("complete", "")),
    ("no objective", 0, None, TrialReading({"step": 5.0}), ("fail", "NoObjective")),
    ("nan", 0, result(metrics={"eval_loss": float("nan")}), None, ("fail", "NotFinite")),
    ("own reason", 1, result("failed", reason="Diverged"), None, ("fail", "TrialFailed")),
    ("sigterm", 143, result("stopped"), None, ("fail", "Stopped")),
    ("sigkill", 137, None, None, ("fail", "Killed")),
    ("crash", 3, None, None, ("fail", "Error")),
]


@pytest.mark.parametrize(("case", "code", "final", "last", "expected"), SAME_ENDINGS)
def test_operator_and_local_runner_judge_an_ending_alike(
    tmp_path: Path,
    case: str,
    code: int,
    final: TrialResult | None,
    last: TrialReading | None,
    expected: tuple[str, str],
) -> None:
    # The operator sees a pod; the local runner sees a process's return code and its files.
    message = final.to_message() if final is not None else None
    pod = view(pod_of(code, message))
    assert pod.kind == "ended" and pod.ending is not None
    on_cluster = judge(TrialEnding(**{**pod.ending.__dict__, "last": last}), OBJ)
    if message is not None:
        (tmp_path / "termination-log").write_text(message)
    returncode = -signal.SIGTERM if code == 143 else -signal.SIGKILL if code == 137 else code
    local = judge(process_ending(returncode, read_result(tmp_path), None, last), OBJ)
    assert (on_cluster.kind, word(on_cluster)) == expected, case
    assert (local.kind, word(local)) == expected, case
    assert (on_cluster.values, on_cluster.step) == (local.values, local.step), case


def test_a_sidecar_does_not_keep_an_ended_trial_running() -> None:
    pod = pod_of(0, result(metrics={"eval_loss": 0.5}, steps=3).to_message(), phase="Running")
    pod["status"]["containerStatuses"].append({"name": "proxy", "state": {"running": {}}})
    seen = view(pod)
    assert (seen.kind, seen.live) == ("ended", True)
    assert seen.ending is not None and judge(seen.ending, OBJ).kind == "complete"


def test_exit_status_of_a_signalled_process() -> None:
    assert exit_status(-signal.SIGKILL) == 137 and exit_status(-signal.SIGTERM) == 143
    assert exit_status(3) == 3


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


def test_pod_view_never_copies_unparsed_message_text() -> None:
    seen = view(pod_of(2, "Traceback: secret=abc123 ..."))
    assert seen.ending is not None and seen.ending.result is None
    assert "secret" not in str(judge(seen.ending, OBJ).reason)
    assert json.dumps(seen.ending.detail)  # pod and container reasons only


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


# ---- strategies and additional metrics -------------------------------------------------


def objective(strategy: str, metric: str = "eval_loss") -> Objective:
    return Objective.model_validate({"metric": metric, "strategy": strategy})


def test_min_and_max_choose_among_history_readings_and_final_value() -> None:
    history = {"eval_loss": [[10, 0.9], [20, 0.4], [30, float("nan")]]}
    final = result(metrics={"eval_loss": 0.6}, steps=40, intermediate=history)
    # The runtime read 0.3 at step 25 (thinned out of the result's history) and 1.2 at 5.
    seen = {"eval_loss": [(25, 0.3), (5, 1.2)]}
    done = ending(result=final, seen=seen)
    assert (judge(done, [objective("final")]).values, judge(done, OBJ).step) == ([0.6], 40)
    lowest = judge(done, [objective("min")])
    assert (lowest.kind, lowest.values, lowest.step) == ("complete", [0.3], 25)
    highest = judge(done, [objective("max")])
    assert (highest.values, highest.step) == ([1.2], 5)
    # Without the readings, the result's history and the final value decide.
    assert judge(ending(result=final), [objective("min")]).values == [0.4]
    assert judge(ending(result=final), [objective("max")]).values == [0.9]


def test_min_picks_the_final_value_and_the_earliest_of_ties() -> None:
    final = result(metrics={"eval_loss": 0.1}, steps=9, intermediate={"eval_loss": [[3, 0.5]]})
    assert (judge(ending(result=final), [objective("min")]).step) == 9
    tied = result(metrics={"eval_loss": 0.5}, steps=9, intermediate={"eval_loss": [[3, 0.5]]})
    assert judge(ending(result=tied), [objective("min")]).step == 3


def test_a_strategy_does_not_rescue_a_trial_without_a_final_value() -> None:
    seen = {"eval_loss": [(5, 0.2)]}
    lost = judge(ending(1, seen=seen), [objective("min")])
    assert (lost.kind, lost.values) == ("fail", None)
    nan = result(metrics={"eval_loss": float("nan")}, intermediate={"eval_loss": [[1, 0.2]]})
    assert word(judge(ending(result=nan), [objective("min")])) == "NotFinite"


def test_each_objective_takes_its_own_strategy() -> None:
    final = result(
        metrics={"eval_loss": 0.5, "val/acc": 0.7},
        steps=30,
        intermediate={"eval_loss": [[10, 0.2]], "val/acc": [[10, 0.9], [20, 0.95]]},
    )
    verdict = judge(ending(result=final), [objective("final"), objective("max", "val/acc")])
    # The step is the chosen report's of the first objective.
    assert (verdict.values, verdict.step) == ([0.5, 0.95], 30)


def test_note_extremes_keeps_two_points_per_metric() -> None:
    kept: dict[str, list[tuple[int, float]]] = {}
    for step, value in [(1, 0.5), (2, 0.3), (3, float("inf")), (4, 0.9), (5, 0.4), (6, 0.3)]:
        reading = TrialReading({"val_loss": value, "eval_step": float(step)})
        note_extremes(kept, reading, ["val/loss"])  # read from the val_loss series
    assert kept == {"val/loss": [(2, 0.3), (4, 0.9)]}


def test_additional_metrics_come_from_the_result_else_the_last_reading() -> None:
    final = result(metrics={"eval_loss": 0.5, "Validation-accuracy": 0.8, "junk": float("inf")})
    last = TrialReading({"eval_f1": 0.6, "huge": float("nan"), "eval_step": 3.0})
    names = ["Validation-accuracy", "eval.f1", "junk", "huge", "absent"]
    verdict = judge(ending(result=final, last=last), OBJ, names)
    assert verdict.metrics == {"Validation-accuracy": 0.8, "eval.f1": 0.6}
    # Recorded for a failed trial too; a requeued attempt records nothing.
    assert judge(ending(3, last=last), OBJ, ["eval.f1"]).metrics == {"eval.f1": 0.6}
    assert judge(ending(137, last=last, disruption="Evicted"), OBJ, ["eval.f1"]).metrics == {}


STRATEGY_ENDINGS: list[tuple[str, TrialResult | None, TrialReading | None, list[float], int]] = [
    (
        "min",
        result(metrics={"eval_loss": 0.7}, steps=9, intermediate={"eval_loss": [[3, 0.2]]}),
        None,
        [0.2],
        3,
    ),
    (
        "max",
        result(metrics={"eval_loss": 0.7}, steps=9, intermediate={"eval_loss": [[3, 0.2]]}),
        None,
        [0.7],
        9,
    ),
    ("min", None, TrialReading({"eval_loss": 0.6, "eval_step": 5.0}), [0.1], 2),
    ("max", None, TrialReading({"eval_loss": 0.6, "eval_step": 5.0}), [0.8], 4),
]


@pytest.mark.parametrize(("strategy", "final", "last", "values", "step"), STRATEGY_ENDINGS)
def test_both_runtimes_apply_a_strategy_alike(
    tmp_path: Path,
    strategy: str,
    final: TrialResult | None,
    last: TrialReading | None,
    values: list[float],
    step: int,
) -> None:
    seen = {"eval_loss": [(2, 0.1), (4, 0.8)]} if final is None else {}
    message = final.to_message() if final is not None else None
    pod = view(pod_of(0, message))
    assert pod.ending is not None
    objectives = [objective(strategy)]
    on_cluster = judge(
        dataclasses.replace(pod.ending, last=last, seen=seen), objectives, ["eval_loss"]
    )
    if message is not None:
        (tmp_path / "termination-log").write_text(message)
    ending_here = process_ending(0, read_result(tmp_path), None, last, seen=seen)
    local = judge(ending_here, objectives, ["eval_loss"])
    for verdict in (on_cluster, local):
        assert (verdict.kind, verdict.values, verdict.step) == ("complete", values, step)
    assert on_cluster.metrics == local.metrics


@pytest.mark.parametrize(
    ("reported", "recorded"),
    [
        ("/output/s-t0001/final", "/output/s-t0001/final"),
        (None, None),
        ("", None),
        ("/out/" + "a" * 300, None),  # bounded: cut short it would name another folder
        ("/out/final\n# Injected: yes", None),
        ("/out/\x1b[31mfinal", None),
        ("/out/hf_abcdefghijklmnop/final", None),  # credential-shaped: masked = another path
    ],
)
def test_a_completed_trials_artifacts_path_is_taken_whole_or_not_at_all(
    reported: str | None, recorded: str | None
) -> None:
    result = TrialResult(status="succeeded", metrics={"eval_loss": 0.5}, adapter_path=reported)
    verdict = judge(TrialEnding(0, result=result), ["eval_loss"])
    assert verdict.kind == "complete" and verdict.artifacts == recorded
