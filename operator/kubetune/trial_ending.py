"""How a trial ended, judged once for both runtimes: Succeeded, Failed, Pruned or Requeued.

The operator (from a trial pod) and `kubetune run` (from a trial process) describe an ending
with the same facts, and `judge` turns them into the same verdict. Pure: no I/O.

The rules, in order:
1. Final values: a trial that exited 0 and reported every objective completes, even if
   kubetune was stopping it (the work is done and must not be lost or repeated). The result
   it wrote (termination message or result.json) is authoritative; a value missing there is
   taken from the last metrics reading, but only when the trial ended on its own and that
   reading is known to be its last (a gauge at step 0 is no evaluation).
2. kubetune stopped it: pruned -> Pruned; past trialTimeout -> Failed; interrupted, suspended
   or the sweep finished -> Requeued (not a disruption: it does not count toward the cap).
3. The cluster took it away (eviction, preemption, node loss, DisruptionTarget, the pod
   deleted from outside) -> Requeued as a disruption, capped by budget.maxRequeues.
4. Everything else is a failure with a reason from a fixed vocabulary. A SIGTERM or SIGKILL
   with no disruption behind it (a liveness probe, a watchdog, an OOM killer) is a failure:
   requeueing it would rerun a trial that dies the same way, without limit.
Free text the trial wrote (its failure reason, its log) only follows the vocabulary word as
a sanitized, bounded excerpt.
"""

import math
from dataclasses import dataclass, field
from typing import Literal

from kubetune import conventions
from kubetune.metrics.types import TrialReading, short_name
from kubetune.text import excerpt
from kubetune.trial_result import TrialResult

# Why kubetune stopped a trial itself; None when the trial ended on its own.
StopReason = Literal["pruned", "timeout", "interrupted", "suspended", "finished"]
VerdictKind = Literal["complete", "prune", "fail", "requeue"]

EXIT_SIGKILL = 137  # 128 + 9

# The fixed vocabulary of reasons (the word before the colon).
REASON_TIMEOUT = "Timeout"
REASON_INTERRUPTED = "Interrupted"
REASON_SUSPENDED = "Suspended"
REASON_SWEEP_FINISHED = "SweepFinished"
REASON_METRICS_LOST = "MetricsLost"
REASON_OOM = "OOMKilled"
REASON_NOT_FINITE = "NotFinite"
REASON_NO_OBJECTIVE = "NoObjective"
REASON_TRIAL_FAILED = "TrialFailed"
REASON_STOPPED = "Stopped"
REASON_KILLED = "Killed"
REASON_ERROR = "Error"

_KUBETUNE_STOPS: dict[StopReason, str] = {
    "interrupted": REASON_INTERRUPTED,
    "suspended": REASON_SUSPENDED,
    "finished": REASON_SWEEP_FINISHED,
}


@dataclass(frozen=True)
class TrialEnding:
    """The facts about one ended trial, as either runtime observes them."""

    # Exit status of the trial's own container or process; 128+N when killed by signal N.
    exit_code: int | None
    result: TrialResult | None = None
    last: TrialReading | None = None
    # False when the last reading may predate the trial's final update (read before an
    # outage of the metrics source): then it is no final value.
    last_is_final: bool = True
    stop: StopReason | None = None
    timeout: str | None = None  # budget.trialTimeout as written, for the message
    # Why the cluster took the trial away (Evicted, Preempted, NodeLost, ...); None if it did not.
    disruption: str | None = None
    oom: bool = False
    # The metrics source was down while it ran: a missing value may be lost, not unreported.
    metrics_gap: bool = False
    # What else the runtime saw (pod reason, deadline, a log tail): foreign text.
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    values: list[float] | None = None
    step: int | None = None
    reason: str | None = None
    # A requeue the cluster caused (counts toward budget.maxRequeues).
    disruption: bool = False
    # The first objective's evaluations from the result: points the readings may have missed.
    intermediate: list[tuple[int, float]] = field(default_factory=list)


def judge(ending: TrialEnding, objectives: list[str]) -> Verdict:
    """The verdict on an ended trial; objectives are the objective metric names in order."""
    metrics = [short_name(m) for m in objectives]
    result = ending.result
    intermediate = list(result.intermediate.get(metrics[0], [])) if result else []

    def verdict(kind: VerdictKind, reason: str, *, disruption: bool = False) -> Verdict:
        return Verdict(kind, reason=reason, disruption=disruption, intermediate=intermediate)

    values, step = final_values(ending, metrics)
    if values is not None and all(math.isfinite(v) for v in values):
        return Verdict("complete", values, step, intermediate=intermediate)
    if ending.stop == "pruned":
        return Verdict("prune", intermediate=intermediate)
    if ending.stop == "timeout":
        limit = f" ({ending.timeout})" if ending.timeout else ""
        return verdict("fail", f"{REASON_TIMEOUT}: ran past budget.trialTimeout{limit}")
    if ending.stop is not None:
        return verdict("requeue", _KUBETUNE_STOPS[ending.stop])
    if ending.disruption:
        return verdict("requeue", excerpt(ending.disruption), disruption=True)
    if values is not None:
        shown = ", ".join(f"{m}={v}" for m, v in zip(metrics, values, strict=True))
        return verdict("fail", f"{REASON_NOT_FINITE}: final {shown}")
    if ending.oom:
        return verdict("fail", REASON_OOM)
    if result is not None and result.status == "failed" and result.reason:
        return verdict("fail", f"{REASON_TRIAL_FAILED}: {excerpt(result.reason)}")
    if ending.exit_code == conventions.EXIT_OK:
        if ending.metrics_gap:
            return verdict(
                "requeue",
                f"{REASON_METRICS_LOST}: metrics unreadable while it ran",
                disruption=True,
            )
        return verdict(
            "fail", f"{REASON_NO_OBJECTIVE}: exited 0 without reporting {', '.join(metrics)}"
        )
    return verdict("fail", _exit_reason(ending))


def final_values(ending: TrialEnding, metrics: list[str]) -> tuple[list[float] | None, int | None]:
    """The objective values and their step, when the trial ended well and reported them all."""
    result = ending.result
    if ending.exit_code != conventions.EXIT_OK:
        return None, None
    if result is not None and result.status != "succeeded":
        return None, None
    trusted = ending.last if ending.last_is_final and ending.stop is None else None
    values: list[float] = []
    steps: list[int] = []
    for metric in metrics:
        if result is not None and metric in result.metrics:
            values.append(float(result.metrics[metric]))
            continue
        evaluation = trusted.evaluation(metric) if trusted is not None else None
        if evaluation is None:
            return None, None
        steps.append(evaluation[0])
        values.append(evaluation[1])
    if result is not None and result.steps:
        return values, result.steps
    return values, max(steps) if steps else None


def _exit_reason(ending: TrialEnding) -> str:
    code = ending.exit_code
    detail = f": {excerpt(ending.detail)}" if ending.detail else ""
    if code == conventions.EXIT_STOPPED:
        return f"{REASON_STOPPED}: SIGTERM from outside kubetune (exit code 143){detail}"
    if code == EXIT_SIGKILL:
        return f"{REASON_KILLED}: SIGKILL (exit code 137){detail}"
    if code is None:
        return f"{REASON_ERROR}: ended without an exit code{detail}"
    return f"{REASON_ERROR}: exit code {code}{detail}"
