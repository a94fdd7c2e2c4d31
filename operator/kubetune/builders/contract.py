"""The trial contract: what every trial gets from kubetune, in a pod or as a local process.

One place for the environment a trial reads, the trainer's configuration, which container
of a template is the trial, and the annotations that tie a pod to one attempt of a trial.
The pod builder and the local launcher both build on it, so the two runtimes hand a trial
the same contract (pure, no I/O).
"""

import json
from collections.abc import Mapping
from typing import Any

from kubetune import conventions
from kubetune.builders.errors import BuildError
from kubetune.builders.substitute import ParamValue, params_json
from kubetune.spec import TemplateSpec, TrainerSpec
from kubetune.spec.checks import template_problems
from kubetune.spec.trainer import POD_FIELDS

# How many times this trial was requeued before this pod: a rerun reuses the pod name,
# and this tells the new pod from a leftover of an earlier attempt.
ATTEMPT_ANNOTATION = "kubetune.dev/attempt"
# The container whose exit status and termination message are the trial's result.
CONTAINER_ANNOTATION = "kubetune.dev/container"
# On every pod template of a workload with more than one pod: the labels (k=v,...) only its
# primary pod has, and the workload's apiVersion/kind. A pod not matching is one of the
# trial's other pods (a worker): the trial is judged by the primary one.
PRIMARY_ANNOTATION = "kubetune.dev/primary-pod"
WORKLOAD_ANNOTATION = "kubetune.dev/workload"
# On each pod of a trainer.nodes trial: how many pods (nodes) the trial runs on, so that its
# GPU-seconds, judged from the primary pod alone, count every node's GPUs.
NODES_ANNOTATION = "kubetune.dev/nodes"

# The trainer config env var carries what the trainer needs; never env or resources,
# which may name secrets, nor where and how the pod runs: that is the pod's business.
# gpus, nodes: the launcher's business (torchrun), the trainer reads WORLD_SIZE.
_TRAINER_CONFIG_EXCLUDE = {"env", "resources", "image", "gpus", "nodes"} | {
    TrainerSpec.model_fields[name].alias or name for name in POD_FIELDS
}


def trial_env(
    *,
    sweep: str,
    namespace: str,
    trial: str,
    params: Mapping[str, ParamValue],
    port: int,
    termination_log: str,
) -> dict[str, str]:
    """The KUBETUNE_* variables with the same value in a pod and in a local process."""
    return {
        conventions.ENV_SWEEP: sweep,
        conventions.ENV_TRIAL: trial,
        conventions.ENV_NAMESPACE: namespace,
        conventions.ENV_PARAMS: params_json(params),
        conventions.ENV_METRICS_PORT: str(port),
        conventions.ENV_TERMINATION_LOG: termination_log,
    }


def trainer_command(processes: int, python: str = "python", nodes: int = 1) -> list[str]:
    """The trainer's argv: itself on one process, else under torchrun, N processes per node.

    On several nodes (pods of an Indexed Job) the rendezvous is static: the pod of node
    rank 0 (completion index 0) is the master, so global rank 0, the rank that reports, is
    always in the trial's primary pod. The kubelet expands $(VAR) from the container's env.
    The endpoint is one `host:port` value (not --master-addr/--master-port) so that where
    pods share one port space (the test cluster's kubelet stand-in) it can be mapped whole.
    """
    if nodes > 1:
        return [
            python,
            "-m",
            "torch.distributed.run",
            f"--nnodes={nodes}",
            f"--nproc-per-node={processes}",
            f"--node-rank=$({conventions.ENV_NODE_RANK})",
            "--rdzv-backend=static",
            f"--rdzv-endpoint=$({conventions.ENV_RENDEZVOUS_ENDPOINT})",
            "-m",
            "kubetune_trainer",
        ]
    if processes <= 1:
        return [python, "-m", "kubetune_trainer"]
    # --standalone: a rendezvous on localhost with a free port, so trials never collide.
    return [
        python,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        "kubetune_trainer",
    ]


def trainer_config(trainer: TrainerSpec) -> str:
    """The built-in trainer's settings as the JSON it reads from KUBETUNE_TRAINER_CONFIG."""
    config = trainer.model_dump(by_alias=True, exclude_none=True, mode="json")
    for key in _TRAINER_CONFIG_EXCLUDE:
        config.pop(key, None)
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def template_container_index(template: TemplateSpec) -> int:
    """Position of the trial's container in the template; BuildError as `validate` words it."""
    problems = template_problems(template)
    if problems:
        field, rule = problems[0].split(": ", 1)
        raise BuildError(field, rule)
    containers: list[dict[str, Any]] = template.spec["containers"]
    if template.container is None:
        return 0
    return [c["name"] for c in containers].index(template.container)
