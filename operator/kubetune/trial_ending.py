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
2b. The trial's workload failed (spec.workload: a JobSet or PyTorchJob whose Failed
   condition is set, e.g. because a worker pod failed) -> Failed, even if the cluster then
   took the primary pod away with it.
3. The cluster took it away (eviction, preemption, node loss, DisruptionTarget, the pod
   deleted from outside) -> Requeued as a disruption, capped by budget.maxRequeues.
4. Everything else is a failure with a reason from a fixed vocabulary. A SIGTERM or SIGKILL
   with no disruption behind it (a liveness probe, a watchdog, an OOM killer) is a failure:
   requeueing it would rerun a trial that dies the same way, without limit.
Free text the trial wrote (its failure reason, its log) only follows the vocabulary word as
a sanitized, bounded excerpt.

Which value a completed trial gets, per objective (Objective.strategy): `final` takes the
final value of rule 1. `min` and `max` take the least or greatest of the trial's reports
of that metric, with the step of the chosen report (ties: the earliest). The reports that
count are exactly these, non-finite ones left out:
  a. the evaluations in the result's history (TrialResult.intermediate[metric]; result.json
     holds them all, a termination message may have been thinned to fit 4 KiB);
  b. the evaluations the runtime read while the trial ran (TrialEnding.seen: the operator
     and `kubetune run` keep the least and greatest reading of each objective per attempt,
     every metrics.interval; an operator restart forgets what it had read before);
  c. the final value itself.
An evaluation made between two readings and thinned out of the message is not counted.
The final value must still be reported and finite for the trial to complete. The verdict's
step is the chosen report's step of the first objective.

The gpu_hours objective (metric_names.GPU_HOURS_OBJECTIVE) is no report of the trial's:
its value is the trial's GPU-hours as kubetune measured them, the GPU-seconds of its earlier
attempts (TrialEnding.earlier_gpu_seconds) plus this one's (TrialEnding.gpu_seconds), to
1 s. Whatever the trial itself reports under that name is ignored, so a trial cannot make
itself look cheap.

Additional metrics (spec.additionalMetrics) are recorded, never judged: each from the
result's metrics, else the last reading; non-finite values are dropped.
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from kubetune import conventions
from kubetune.artifacts import artifacts_path
from kubetune.metric_names import GPU_HOURS_OBJECTIVE
from kubetune.metrics.types import TrialReading, short_name
from kubetune.spec.sweep import Objective, Strategy
from kubetune.text import excerpt
from kubetune.trial_result import TrialResult

# Why kubetune stopped a trial itself; None when the trial ended on its own.
StopReason = Literal["pruned", "timeout", "interrupted", "suspended", "finished"]
VerdictKind = Literal["complete", "prune", "fail", "requeue"]
# (step, value) reports of one metric; step None for a final value with no step known.
Report = tuple[int | None, float]

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
REASON_WORKLOAD_FAILED = "WorkloadFailed"

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
    # The trial's pod ended only by being deleted: it had not succeeded and the cluster named
    # no reason (disruption then holds the operator's PodDeleted reason, which a runtime that
    # learns who deleted it may replace: runtime._preempted for Kueue). A fact, so that no
    # rule has to recognise a deletion by its wording. Never set by `kubetune run`: a local
    # trial process has no pod to delete (a signal from outside is its exit status, rule 4).
    deleted: bool = False
    oom: bool = False
    # The metrics source was down while it ran: a missing value may be lost, not unreported.
    metrics_gap: bool = False
    # What else the runtime saw (pod reason, deadline, a log tail): foreign text.
    detail: str = ""
    # Evaluations of each objective read while it ran, by metric name (note_extremes keeps
    # only the least and greatest: all that the min and max strategies choose among).
    seen: Mapping[str, Sequence[tuple[int, float]]] = field(default_factory=dict)
    # GPUs requested x running time of this attempt; what the trial's record holds from
    # its earlier attempts (the gpu_hours objective is the sum).
    gpu_seconds: float = 0.0
    earlier_gpu_seconds: float = 0.0
    # The workload's Failed condition (its reason and message: foreign text); None if unset.
    workload_failed: str | None = None


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
    # spec.additionalMetrics values by name, finite ones only (recorded, not judged).
    metrics: dict[str, float] = field(default_factory=dict)
    # What this attempt spent (TrialEnding.gpu_seconds), whatever the verdict.
    gpu_seconds: float = 0.0
    # Where a completed trial's trained artifacts are (its result's adapterPath, checked).
    artifacts: str | None = None


def judge(
    ending: TrialEnding,
    objectives: Sequence[Objective | str],
    additional: Sequence[str] = (),
) -> Verdict:
    """The verdict on an ended trial.

    objectives: the sweep's objectives in order (a bare name is one with strategy final);
    additional: spec.additionalMetrics, whose values the verdict carries.
    """
    scoring: list[tuple[str, Strategy]] = [
        (short_name(o), "final") if isinstance(o, str) else (short_name(o.metric), o.strategy)
        for o in objectives
    ]
    metrics = [metric for metric, _ in scoring]
    result = ending.result
    intermediate = list(result.intermediate.get(metrics[0], [])) if result else []
    recorded = additional_values(ending, additional)

    spent = gpu_seconds(ending)

    def verdict(kind: VerdictKind, reason: str, *, disruption: bool = False) -> Verdict:
        return Verdict(
            kind,
            reason=reason,
            disruption=disruption,
            intermediate=intermediate,
            metrics={} if kind == "requeue" else recorded,
            gpu_seconds=spent,
        )

    reports = _final_reports(ending, metrics)
    values = [value for _, value in reports] if reports is not None else None
    if reports is not None and all(math.isfinite(value) for _, value in reports):
        chosen = [
            _choose(ending, metric, strategy, final)
            for (metric, strategy), final in zip(scoring, reports, strict=True)
        ]
        step = chosen[0][0] if any(s != "final" for _, s in scoring) else _final_step(reports)
        return Verdict(
            "complete",
            [value for _, value in chosen],
            step,
            intermediate=intermediate,
            metrics=recorded,
            gpu_seconds=spent,
            artifacts=artifacts_path(result.adapter_path) if result else None,
        )
    if ending.stop == "pruned":
        return Verdict("prune", intermediate=intermediate, metrics=recorded, gpu_seconds=spent)
    if ending.stop == "timeout":
        limit = f" ({ending.timeout})" if ending.timeout else ""
        return verdict("fail", f"{REASON_TIMEOUT}: ran past budget.trialTimeout{limit}")
    if ending.stop is not None:
        return verdict("requeue", _KUBETUNE_STOPS[ending.stop])
    if ending.workload_failed is not None:
        return verdict("fail", f"{REASON_WORKLOAD_FAILED}: {excerpt(ending.workload_failed)}")
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
            "fail",
            f"{REASON_NO_OBJECTIVE}: exited 0 without reporting "
            + ", ".join(m for m in metrics if m != GPU_HOURS_OBJECTIVE),
        )
    return verdict("fail", _exit_reason(ending))


def final_values(ending: TrialEnding, metrics: list[str]) -> tuple[list[float] | None, int | None]:
    """The objective values and their step, when the trial ended well and reported them all."""
    reports = _final_reports(ending, metrics)
    if reports is None:
        return None, None
    return [value for _, value in reports], _final_step(reports)


def gpu_seconds(ending: TrialEnding) -> float:
    """This attempt's GPU-seconds; anything but a finite non-negative count is none."""
    spent = ending.gpu_seconds
    return spent if math.isfinite(spent) and spent > 0 else 0.0


def gpu_hours_value(ending: TrialEnding) -> float:
    """The gpu_hours objective's value: the trial's GPU-hours over all its attempts, to 1 s."""
    earlier = ending.earlier_gpu_seconds if math.isfinite(ending.earlier_gpu_seconds) else 0.0
    return round(max(0.0, earlier) + gpu_seconds(ending)) / 3600.0


def additional_values(ending: TrialEnding, names: Sequence[str]) -> dict[str, float]:
    """spec.additionalMetrics of an ended trial: the result's value, else the last reading's.

    Whatever the trial reported: a non-finite value is dropped, so no NaN or inf reaches
    status (where JSON cannot hold it).
    """
    result = ending.result
    found: dict[str, float] = {}
    for name in names:
        value = result.metrics.get(name) if result is not None else None
        if value is None and ending.last is not None:
            value = ending.last.value(name)
        if value is not None and math.isfinite(value):
            found[name] = float(value)
    return found


def note_extremes(
    kept: dict[str, list[tuple[int, float]]], reading: TrialReading, metrics: Sequence[str]
) -> None:
    """Fold one reading of a running trial into the least and greatest evaluation of each
    metric a runtime keeps for it (what TrialEnding.seen carries). Bounded: two per metric."""
    for metric in metrics:
        evaluation = reading.evaluation(metric)
        if evaluation is None or not math.isfinite(evaluation[1]):
            continue
        points = [*kept.get(metric, []), evaluation]
        low = min(points, key=lambda p: (p[1], p[0]))
        high = max(points, key=lambda p: (p[1], -p[0]))
        kept[metric] = [low] if low == high else [low, high]


def _final_reports(ending: TrialEnding, metrics: list[str]) -> list[Report] | None:
    """Each objective's final (step, value), when the trial ended well and reported them all."""
    result = ending.result
    if ending.exit_code != conventions.EXIT_OK:
        return None
    if result is not None and result.status != "succeeded":
        return None
    trusted = ending.last if ending.last_is_final and ending.stop is None else None
    reports: list[Report] = []
    for metric in metrics:
        if metric == GPU_HOURS_OBJECTIVE:
            reports.append((None, gpu_hours_value(ending)))
            continue
        if result is not None and metric in result.metrics:
            reports.append((result.steps or None, float(result.metrics[metric])))
            continue
        evaluation = trusted.evaluation(metric) if trusted is not None else None
        if evaluation is None:
            return None
        reports.append(evaluation)
    if result is not None and result.steps:
        # The result's step count is the step of every final value.
        return [(result.steps, value) for _, value in reports]
    return reports


def _final_step(reports: list[Report]) -> int | None:
    steps = [step for step, _ in reports if step is not None]
    return max(steps) if steps else None


def _choose(ending: TrialEnding, metric: str, strategy: Strategy, final: Report) -> Report:
    """The report of metric that strategy makes the trial's value (see the module rules)."""
    if strategy == "final":
        return final
    result = ending.result
    history = result.intermediate.get(metric, []) if result is not None else []
    reports: list[Report] = [
        *((int(s), float(v)) for s, v in history),
        *((int(s), float(v)) for s, v in ending.seen.get(metric, ())),
        final,
    ]
    finite = [r for r in reports if math.isfinite(r[1])]

    def earliest(report: Report) -> float:
        return report[0] if report[0] is not None else math.inf

    if strategy == "min":
        return min(finite, key=lambda r: (r[1], earliest(r)))
    return max(finite, key=lambda r: (r[1], -earliest(r)))


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
