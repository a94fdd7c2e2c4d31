"""Which trial pods a pass creates and deletes (no I/O), level-based.

Every pass compares the trials the engine has in flight with the pods that exist: a trial
with no pod of its attempt gets one, a pod no trial in flight wants is stopped. The
PodLedger remembers this process's own recent acts, which the watch shows only later, so
that a pass never creates or deletes the same pod twice.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubetune.engine import TrialPlan
from kubetune.operator.effects import PodToCreate
from kubetune.operator.pod_ledger import PodLedger
from kubetune.operator.pod_state import PodView

# (pod name, uid)
PodRef = tuple[str, str]


def is_current(pod: PodView, attempt: int, uid: str | None) -> bool:
    """Whether `pod` is the trial's pod for `attempt` (of this sweep, whose uid is `uid`)."""
    if uid is not None and pod.owner_uid not in (None, uid):
        return False
    return pod.attempt == attempt


def converge(
    plans: Iterable[TrialPlan],
    pods: Mapping[str, PodView],
    ledger: PodLedger,
    uid: str | None,
    now: float,
    build: Callable[[TrialPlan], dict[str, Any]],
) -> tuple[list[PodToCreate], list[PodRef]]:
    """The pods to create (manifests from `build`) and to delete for the trials in flight."""
    create: list[PodToCreate] = []
    delete: list[PodRef] = []
    wanted: set[str] = set()
    for plan in plans:
        wanted.add(plan.name)
        pod = pods.get(plan.name)
        if pod is not None and is_current(pod, plan.attempt, uid):
            ledger.seen(plan.name)
            continue
        if pod is not None:
            # A leftover of an earlier attempt (or of another sweep of this name).
            if pod.kind != "terminating" and ledger.may_delete(plan.name, now):
                delete.append((plan.name, pod.uid))
            continue
        if ledger.recently_created(plan.name, now, plan.attempt):
            continue
        create.append(
            PodToCreate(plan.number, plan.name, plan.attempt, dict(plan.params), build(plan))
        )
    delete.extend(stray_pods(pods, wanted, ledger, uid, now))
    return create, delete


def stray_pods(
    pods: Mapping[str, PodView],
    wanted: set[str],
    ledger: PodLedger,
    uid: str | None,
    now: float,
) -> list[PodRef]:
    """Pods no trial in flight wants: stop the live ones (a sidecar can keep a finished
    trial's pod running); a foreign finished one goes too."""
    doomed = []
    for name, pod in pods.items():
        if name in wanted or pod.kind == "terminating":
            continue
        foreign = uid is not None and pod.owner_uid not in (None, uid)
        if (pod.live or foreign) and ledger.may_delete(name, now):
            doomed.append((name, pod.uid))
    return doomed
