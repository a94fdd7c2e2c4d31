"""Why trials in flight cannot start, and the TrialsStarted condition that says so (pure).

A pass collects, per trial, the problem that keeps it from starting: a create the API
server refused, a container stuck waiting (image pull, config error), a pod the scheduler
cannot place, or Kueue holding its workload back. Most clear up by themselves (a quota
frees as pods end, a Secret appears late), so a trial fails only when the problem is
lasting: a permanent refusal tried CREATE_ATTEMPTS times, or a waiting reason that is
permanent or outlasts the start grace. The rest is reported, not acted on.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from kubetune.operator.pod_state import PERMANENT_WAITING
from kubetune.text import excerpt

# An image pull or container config error may clear up (a registry hiccup, a Secret
# created a few seconds late); the trial fails only if it lasts this long.
START_GRACE_SECONDS = 300.0
# A create the API server refuses for good (4xx) is tried this many times, then the trial fails.
CREATE_ATTEMPTS = 3
# Trials named in the TrialsStarted condition's message, at most.
STUCK_SHOWN = 3
# The TrialsStarted reason while Kueue holds trials back (and nothing worse is wrong).
QUEUED_REASON = "Queued"

# (trial name, why it cannot start): why begins with a reason word, e.g. "ErrImagePull: ...".
Stuck = list[tuple[str, str]]
# (status, reason, message) of a condition to set.
ConditionUpdate = tuple[bool, str, str]


@dataclass(frozen=True)
class Refusal:
    """The API server refused to create a trial's pod."""

    attempt: int
    count: int
    status: int
    message: str

    @property
    def permanent(self) -> bool:
        # 409 and 429 pass; a quota that is full now frees up as other pods end.
        quota = "exceeded quota" in self.message
        return 400 <= self.status < 500 and self.status not in (409, 429) and not quota

    @property
    def gives_up(self) -> bool:
        """The trial fails: the refusal is lasting and was tried often enough."""
        return self.permanent and self.count >= CREATE_ATTEMPTS

    @property
    def problem(self) -> str:
        return f"CreateRefused: HTTP {self.status}: {self.message}"


def next_refusal(previous: Refusal | None, attempt: int, status: int, message: str) -> Refusal:
    """The refusal of a create of `attempt`, counting the earlier ones of the same attempt."""
    count = previous.count + 1 if previous and previous.attempt == attempt else 1
    return Refusal(attempt, count, status, excerpt(message))


def waiting_problem(reason: str, message: str, waited: float, grace: float) -> tuple[bool, str]:
    """A trial container waiting for `waited` seconds with `reason`: (the trial fails, why)."""
    text = f"{reason}: {excerpt(message)}" if message else reason
    if reason in PERMANENT_WAITING:
        return True, f"StartFailed: {text}"
    if waited > grace:
        return True, f"StartFailed: {reason} for {waited:.0f}s: {excerpt(message)}"
    return False, text


def trials_started(
    stuck: Sequence[tuple[str, str]], queue_name: str | None, reported: bool
) -> ConditionUpdate | None:
    """TrialsStarted: False with the first problem's reason while trials cannot start,
    False with reason Queued while they only wait for Kueue's quota (which is no problem:
    they start as it frees up), True otherwise; None leaves it unset when it never was
    (`reported`: the sweep has the condition)."""
    queued = [name for name, why in stuck if why == QUEUED_REASON]
    problems = [(name, why) for name, why in stuck if why != QUEUED_REASON]
    waiting = f"{len(queued)} trial(s) queued by Kueue" if queued else ""
    if queued and not problems:
        # Without spec.queueName, Kueue may still manage the namespace's workloads.
        by = f"queue {queue_name}" if queue_name else "Kueue"
        shown = ", ".join(queued[:STUCK_SHOWN])
        return (
            False,
            QUEUED_REASON,
            f"{waiting} wait for admission by {by}: {shown}" + _more(len(queued)),
        )
    if problems:
        shown = "; ".join(f"{name}: {why}" for name, why in problems[:STUCK_SHOWN])
        reason = problems[0][1].split(":", 1)[0] or "NotStarted"
        return (
            False,
            reason,
            f"{len(problems)} trial(s) cannot start: {shown}{_more(len(problems))}"
            + (f"; {waiting}" if waiting else ""),
        )
    return (True, "Started", "") if reported else None


def _more(count: int) -> str:
    more = count - STUCK_SHOWN
    return f" (and {more} more)" if more > 0 else ""
