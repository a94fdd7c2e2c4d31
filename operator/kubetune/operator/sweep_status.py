"""A sweep's status: read back from the resource, and composed after each pass."""

import logging
from collections.abc import Mapping
from typing import Any

from kubetune.engine import Completion, SweepEngine
from kubetune.operator import conditions as cond
from kubetune.spec import SweepSpec, SweepStatus
from kubetune.spec.status import Phase

log = logging.getLogger(__name__)


def status_from(body: Mapping[str, Any]) -> SweepStatus:
    """The status a sweep carries (kopf's bookkeeping aside); empty when unreadable."""
    try:
        return SweepStatus.of(body)
    except ValueError as error:
        log.warning("ignoring unreadable status: %s", error)
        return SweepStatus()


def phase_of(
    status: SweepStatus,
    engine: SweepEngine | None,
    spec: SweepSpec | None,
    completion: Completion | None,
    *,
    invalid: bool,
    hold: str | None,
    failure: str | None = None,
) -> Phase:
    if invalid:
        return "Invalid"
    if failure is not None:
        return "Failed"
    if engine is None:
        return status.phase if hold else "Pending"
    if completion is not None:
        return "Succeeded" if completion.succeeded else "Failed"
    if spec is not None and spec.suspend:
        return "Suspended"
    return "Running" if engine.counts().total else "Pending"


def compose_status(
    status: SweepStatus,
    engine: SweepEngine | None,
    spec: SweepSpec | None,
    completion: Completion | None,
    *,
    invalid: bool,
    hold: str | None,
    generation: int | None,
    accepted_hash: str | None,
    failure: str | None = None,
) -> dict[str, Any]:
    """Update `status` in place from the engine and the pass's outcome; its patch body.

    `failure`: why the sweep failed before its trials could run (a failed prefetch)."""
    phase = phase_of(status, engine, spec, completion, invalid=invalid, hold=hold, failure=failure)
    status.phase = phase
    status.observed_generation = generation
    if engine is not None and spec is not None:
        status.objective = ",".join(o.metric for o in spec.objective_list)
        status.trials = engine.counts()
        status.best = engine.best()
        status.pareto_front = engine.pareto_front() if spec.multi_objective else None
        status.gpu_hours = engine.gpu_hours()
        status.keep_history(engine.history())
        status.search_space_hash = accepted_hash
        if status.start_time is None and status.trials.total:
            status.start_time = cond.now_iso()
    if completion is not None:
        status.message = completion.message
        if status.completion_time is None:
            status.completion_time = cond.now_iso()
        ready: tuple[bool, str] = (completion.succeeded, completion.reason)
    elif failure is not None:
        status.message = failure
        if status.completion_time is None:
            status.completion_time = cond.now_iso()
        ready = (False, failure.split(":", 1)[0])
    else:
        status.completion_time = None
        counts = status.trials
        status.message = (
            hold
            if hold
            else f"{counts.running} running, "
            + (f"{counts.queued} queued, " if counts.queued else "")
            + f"{counts.succeeded} succeeded, "
            f"{counts.pruned} pruned, {counts.failed} failed"
        )
        ready = (False, phase)
    status.conditions = cond.set_condition(
        status.conditions,
        cond.READY,
        ready[0],
        ready[1],
        status.message,
        generation=generation,
    )
    return status.to_patch()
