"""What one local trial runs: argv, environment and working directory (pure, no I/O)."""

import copy
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune import conventions
from kubetune.builders.contract import (
    template_container_index,
    trainer_command,
    trainer_config,
    trial_env,
)
from kubetune.builders.errors import BuildError
from kubetune.builders.substitute import ParamValue, TrialNames, substitute_container
from kubetune.local.layout import termination_log_name
from kubetune.spec import SweepSpec
from kubetune.spec.workload_rules import (
    is_trainjob,
    pod_template,
    primary_container_index,
    primary_template_field,
    shape_problems,
)

LOCAL_NAMESPACE = "local"
# Trials end right after their final update; they wait at most this long for a last scrape.
SCRAPE_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class TrialLaunch:
    argv: list[str]
    env: dict[str, str]
    cwd: str | None = None


def local_env(
    sweep: str,
    trial: str,
    params: Mapping[str, ParamValue],
    port: int,
    trial_dir: Path,
    attempt: str | None = None,
) -> dict[str, str]:
    """The trial contract for a local trial: same names as in a pod, local values.

    attempt: the launch's token (KUBETUNE_ATTEMPT), which also names its termination log.
    """
    env = trial_env(
        sweep=sweep,
        namespace=LOCAL_NAMESPACE,
        trial=trial,
        params=params,
        port=port,
        termination_log=str(trial_dir / termination_log_name(attempt)),
    )
    env[conventions.ENV_METRICS_ADDR] = "127.0.0.1"
    env[conventions.ENV_OUTPUT_DIR] = str(trial_dir)
    env[conventions.ENV_SCRAPE_WAIT] = str(SCRAPE_WAIT_SECONDS)
    if attempt:
        env[conventions.ENV_ATTEMPT] = attempt
    return env


def build_launch(
    spec: SweepSpec,
    sweep: str,
    trial: str,
    params: Mapping[str, ParamValue],
    port: int,
    trial_dir: Path,
    base_env: Mapping[str, str] | None = None,
    attempt: str | None = None,
) -> TrialLaunch:
    """The subprocess for one trial; BuildError names the field that makes it impossible.

    `python` in a template resolves to the interpreter kubetune runs in, so a template
    written for an image also runs in the user's virtual environment.
    """
    env = dict(os.environ if base_env is None else base_env)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
    env.update(local_env(sweep, trial, params, port, trial_dir, attempt))
    if spec.trainer is not None:
        for index, var in enumerate(spec.trainer.env):
            if var.value is not None:
                env[var.name] = var.value
            elif var.name not in env:
                # Secrets are not available locally: take them from the caller's environment.
                raise BuildError(
                    f"spec.trainer.env[{index}].valueFrom",
                    f"not available in local runs; export {var.name} in your shell instead",
                )
        env[conventions.ENV_TRAINER_CONFIG] = trainer_config(spec.trainer)
        # Secrets come from the caller's shell here; the trainer still must not report them.
        env[conventions.ENV_SECRET_ENV] = ",".join(spec.trainer.secret_env_names())
        return TrialLaunch(trainer_command(spec.trainer.processes(), sys.executable), env)
    names = TrialNames(sweep=sweep, trial=trial, number=conventions.trial_number(sweep, trial) or 0)
    if spec.workload is not None:
        # The workload's primary pod runs as a template trial does: its primary container
        # (a multi-node workload runs as one node locally).
        problems = shape_problems(spec.workload)
        if problems:
            field, rule = problems[0].split(": ", 1)
            raise BuildError(field, rule)
        if is_trainjob(spec.workload):
            raise BuildError(
                "spec.workload.object.kind",
                "a TrainJob needs a cluster: its container comes from the TrainingRuntime "
                "it references, which kubetune run cannot read; run it with the operator",
            )
        index = primary_container_index(spec.workload)
        container = pod_template(spec.workload)["spec"]["containers"][index]
        field = f"{primary_template_field(spec.workload)}.spec.containers[{index}]"
        return _container_launch(copy.deepcopy(container), field, params, env, names)
    assert spec.template is not None
    index = template_container_index(spec.template)
    container = copy.deepcopy(spec.template.spec["containers"][index])
    field = f"spec.template.spec.containers[{index}]"
    return _container_launch(container, field, params, env, names)


def _container_launch(
    container: dict[str, Any],
    field: str,
    params: Mapping[str, ParamValue],
    env: dict[str, str],
    names: TrialNames,
) -> TrialLaunch:
    """The trial's container as a local process: its command, args, env and workingDir."""
    substitute_container(container, params, field, names)
    command = container.get("command")
    if not command:
        raise BuildError(
            f"{field}.command",
            "required by kubetune run: a local trial has no image entrypoint to fall back on",
        )
    for var_index, var in enumerate(container.get("env") or []):
        name = var.get("name") if isinstance(var, dict) else None
        if not isinstance(name, str):
            raise BuildError(f"{field}.env[{var_index}].name", "required field is missing")
        if conventions.is_kubetune_env(name):
            continue  # kubetune's own values win, as in the operator's pods
        if isinstance(var.get("value"), str):
            env[name] = var["value"]
        elif name not in env:
            raise BuildError(
                f"{field}.env[{var_index}].valueFrom",
                f"not available in local runs; export {name} in your shell instead",
            )
    argv = [str(part) for part in [*command, *(container.get("args") or [])]]
    working_dir = container.get("workingDir")
    return TrialLaunch(argv, env, str(working_dir) if working_dir else None)
