"""Why trials cannot start, and the TrialsStarted condition that says so (pure rules)."""

from kubetune.operator.start_problems import (
    CREATE_ATTEMPTS,
    QUEUED_REASON,
    next_refusal,
    trials_started,
    waiting_problem,
)


def test_a_lasting_refusal_gives_up_after_the_attempts_and_a_full_quota_never() -> None:
    refusal = None
    for _ in range(CREATE_ATTEMPTS - 1):
        refusal = next_refusal(refusal, 1, 422, "spec.containers: Invalid value")
        assert not refusal.gives_up
    refusal = next_refusal(refusal, 1, 422, "spec.containers: Invalid value")
    assert refusal.gives_up
    assert refusal.problem == "CreateRefused: HTTP 422: spec.containers: Invalid value"
    # A new attempt counts from one again.
    assert next_refusal(refusal, 2, 422, "again").count == 1
    quota = None
    for _ in range(CREATE_ATTEMPTS + 2):
        quota = next_refusal(quota, 1, 403, "exceeded quota: gpu")
    assert quota is not None and not quota.permanent and not quota.gives_up
    assert not next_refusal(None, 1, 429, "slow down").permanent


def test_a_waiting_container_fails_its_trial_when_permanent_or_past_the_grace() -> None:
    assert waiting_problem("ErrImagePull", "not found", 10.0, 300.0) == (
        False,
        "ErrImagePull: not found",
    )
    assert waiting_problem("ErrImagePull", "not found", 301.0, 300.0) == (
        True,
        "StartFailed: ErrImagePull for 301s: not found",
    )
    fails, why = waiting_problem("InvalidImageName", "bad:name", 0.0, 300.0)
    assert fails and why == "StartFailed: InvalidImageName: bad:name"


def test_trials_started_names_the_first_problem_and_counts_the_queued() -> None:
    stuck = [
        ("s-t0000", QUEUED_REASON),
        ("s-t0001", "Unschedulable: 0/3 nodes are available"),
        ("s-t0002", "ErrImagePull: not found"),
    ]
    status, reason, message = trials_started(stuck, "team-a", reported=False) or (None, "", "")
    assert (status, reason) == (False, "Unschedulable")
    assert message.startswith("2 trial(s) cannot start: s-t0001: Unschedulable")
    assert message.endswith("; 1 trial(s) queued by Kueue")


def test_only_queued_trials_say_queued_with_the_queue_and_cap_the_names() -> None:
    stuck = [(f"s-t000{n}", QUEUED_REASON) for n in range(5)]
    update = trials_started(stuck, "team-a", reported=False)
    assert update == (
        False,
        QUEUED_REASON,
        "5 trial(s) queued by Kueue wait for admission by queue team-a: "
        "s-t0000, s-t0001, s-t0002 (and 2 more)",
    )
    assert trials_started(stuck[:1], None, reported=False) == (
        False,
        QUEUED_REASON,
        "1 trial(s) queued by Kueue wait for admission by Kueue: s-t0000",
    )


def test_nothing_stuck_sets_started_only_once_the_condition_was_reported() -> None:
    assert trials_started([], None, reported=False) is None
    assert trials_started([], None, reported=True) == (True, "Started", "")
