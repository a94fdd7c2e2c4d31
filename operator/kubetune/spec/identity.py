"""What makes a sweep the same study: the fields that may not change while it runs.

Trials already run were sampled from one search space, by one algorithm, and judged by
one objective (its metric, direction, query and strategy). Changing any of those under a running sweep would mix trials of two
different searches, and the engine could no longer promise that a rebuild from the
history makes the decisions the engine that wrote it would have made. So both runtimes
refuse such an edit: the operator (by a digest kept in status) and `kubetune run
--resume` (against the spec saved in state.json).

Everything else may change: budget, parallelism, suspend, pruning, the objective's
target, spec.additionalMetrics (recorded, never judged: later trials record the new list),
and the trial pod or trainer settings.

A change of kubetune's own defaults is no edit: a sweep that left algorithm.name out and
started when the default was tpe keeps running tpe (as_started).
"""

import hashlib
import json
from typing import Any

from kubetune.spec.sweep import SweepSpec


def study_identity(spec: SweepSpec) -> dict[str, Any]:
    """The study-defining fields of an effective spec, keyed by their spec path."""
    return {
        "spec.parameters": [p.model_dump(by_alias=True, mode="json") for p in spec.parameters],
        "spec.objective": [
            {"metric": o.metric, "direction": o.direction, "query": o.query}
            # strategy changes how trials are judged; left out at its default so the digest
            # of a sweep started before it existed stays the same.
            | ({"strategy": o.strategy} if o.strategy != "final" else {})
            for o in spec.objective_list
        ],
        "spec.algorithm": spec.algorithm.model_dump(by_alias=True, mode="json"),
    }


def study_digest(spec: SweepSpec) -> str:
    """A short stable digest of study_identity, small enough to keep in status."""
    return _digest(study_identity(spec))


def study_changes(before: SweepSpec, after: SweepSpec) -> list[str]:
    """The spec paths whose study-defining content differs between two specs."""
    old, new = study_identity(before), study_identity(after)
    return [path for path in old if old[path] != new[path]]


def legacy_search_space_digest(spec: SweepSpec) -> str:
    """The digest kubetune 0.1 kept in status (parameters and objectives only).

    A sweep started by 0.1 carries this one; accepting it once lets an upgraded operator
    adopt the sweep and store the current digest instead of refusing an unchanged spec.
    """
    identity = study_identity(spec)
    return _digest(
        {"parameters": identity["spec.parameters"], "objectives": identity["spec.objective"]}
    )


# The default algorithm before `auto`; sweeps that started under it keep it.
FORMER_DEFAULT_ALGORITHM = "tpe"


def as_started(written: SweepSpec, effective: SweepSpec, digest: str | None) -> SweepSpec:
    """The effective spec a sweep runs under, given the study digest it started with.

    ``written`` is the spec as the user wrote it (before effective_spec filled defaults).
    When it leaves algorithm.name out and the sweep started under the former default
    (its digest, or kubetune 0.1's legacy one, matches the spec with tpe), the sweep keeps
    tpe: an operator upgrade must neither refuse it nor switch its sampler mid-run.
    """
    if digest is None or "name" in written.algorithm.model_fields_set:
        return effective
    if digest == study_digest(effective):
        return effective
    algorithm = effective.algorithm.model_copy(update={"name": FORMER_DEFAULT_ALGORITHM})
    former = effective.model_copy(update={"algorithm": algorithm})
    if digest in (study_digest(former), legacy_search_space_digest(former)):
        return former
    return effective


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
