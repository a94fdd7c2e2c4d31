"""Which spec a sweep may run under (pure): the checks a spec passes before it is accepted.

The reconciler (reconcile.py) accepts a spec once per generation. Before any trial is
recorded under it, the spec must parse, pass the semantic checks, name only a Prometheus
URL the admin allows, and build one trial's pod (which finds a template, image or pod
policy problem early). Once trials ran, an edit of what defines the study is refused.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubetune.builders.errors import BuildError
from kubetune.builders.workload import build_trial
from kubetune.engine import SweepEngine
from kubetune.metrics import PrometheusUrlPolicy
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SpecError, SweepSpec, effective_spec, parse_sweep
from kubetune.spec.checks import semantic_problems
from kubetune.spec.identity import as_started, study_changes
from kubetune.spec.parameters import sample_point


@dataclass(frozen=True)
class Accepted:
    """The spec this sweep runs under, and the engine built from it."""

    sweep: HyperparameterSweep
    spec: SweepSpec  # effective spec
    engine: SweepEngine
    digest: str  # spec.identity.study_digest of spec


def checked_spec(
    body: Mapping[str, Any],
    where: str,
    *,
    default_image: str | None,
    policy: PodPolicy,
    prometheus_policy: PrometheusUrlPolicy,
    started_digest: str | None = None,
) -> tuple[HyperparameterSweep, SweepSpec]:
    """The sweep and its effective spec; SpecError (at `where`) with what is wrong.

    `started_digest` (the study digest in status) keeps a sweep started under an earlier
    default on the defaults it started with (spec.identity.as_started)."""
    sweep = parse_sweep(plain(body), where)
    problems = semantic_problems(sweep)
    if problems:
        raise SpecError(where, problems)
    spec = as_started(sweep.spec, effective_spec(sweep.spec), started_digest)
    url = spec.metrics.prometheus.url if spec.metrics.prometheus else None
    refused = prometheus_policy.problem(url)
    if refused is not None:
        raise SpecError(where, [refused])
    try:
        build_trial(
            sweep,
            spec,
            0,
            sample_point(spec.parameters),
            default_image=default_image,
            policy=policy,
        )
    except BuildError as error:
        raise SpecError(where, [str(error)]) from error
    return sweep, spec


def study_edit_refused(previous: SweepSpec | None, spec: SweepSpec) -> str:
    """The message for an edit that changes the study of a sweep whose trials ran."""
    changed = study_changes(previous, spec) if previous is not None else []
    fields = " / ".join(changed) or "spec.parameters / spec.objective / spec.algorithm"
    return f"{fields} cannot change once a sweep has started; revert the edit or create a new sweep"


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """The sweep as the spec models want it: no kopf bookkeeping, no status."""
    meta = dict(body.get("metadata") or {})
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {
            k: v
            for k, v in meta.items()
            if k in ("name", "namespace", "labels", "generation", "uid")
        },
        "spec": dict(body.get("spec") or {}),
    }
