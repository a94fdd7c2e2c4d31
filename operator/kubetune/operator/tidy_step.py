"""When an ended sweep gets its tidy pod (pure): once, after every trial pod is gone.

The tidy pod (builders/tidy.py) removes the checkpoints that pruned and failed trials kept
to resume from, per keepCheckpoints. It is created once: the CheckpointsTidied condition
records that it was (or why it could not be built), and a restarted operator that finds
the condition never creates it again.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubetune import conventions
from kubetune.builders.errors import BuildError
from kubetune.builders.tidy import build_tidy_pod, needs_tidy
from kubetune.engine import Completion, SweepEngine
from kubetune.operator.pod_state import PodView
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, SweepSpec
from kubetune.spec.status import Condition


@dataclass(frozen=True)
class TidyStep:
    """The tidy pod to create (None: it could not be built) and CheckpointsTidied to set."""

    manifest: dict[str, Any] | None
    condition: tuple[bool, str, str]  # (status, reason, message)


def tidy_step(
    name: str,
    sweep: HyperparameterSweep,
    spec: SweepSpec,
    engine: SweepEngine,
    pods: Mapping[str, PodView],
    completion: Completion | None,
    tidied: Condition | None,
    *,
    default_image: str | None,
    policy: PodPolicy,
) -> TidyStep | None:
    """For sweep `name` whose trials `engine` holds and whose trial pods are `pods`: the
    step once it ended (`completion`) with pruned or failed trials and no CheckpointsTidied
    condition yet (`tidied`); None while there is nothing to do."""
    if completion is None or not needs_tidy(spec) or tidied is not None:
        return None
    if any(pod.live or pod.kind == "terminating" for pod in pods.values()):
        return None  # a stopped trial writes its checkpoint last, at SIGTERM
    ended = [
        conventions.trial_name(name, record.number)
        for record in engine.history()
        if record.state in ("Pruned", "Failed")
    ]
    if not ended:
        return None
    try:
        manifest = build_tidy_pod(sweep, spec, ended, default_image=default_image, policy=policy)
    except BuildError as error:
        return TidyStep(None, (False, "TidyRefused", f"no tidy pod: {error}"))
    message = (
        f"{conventions.tidy_name(name)} removes the checkpoints of {len(ended)} "
        "pruned or failed trial(s)"
    )
    return TidyStep(manifest, (True, "TidyPodCreated", message))
