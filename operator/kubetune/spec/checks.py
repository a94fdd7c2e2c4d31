"""Rules beyond the models' own: the pod template's containers, trainer argument names and types,
the objective a trainer can report, ${params.NAME} placeholders.

Shared by `kubetune validate`, `kubetune run` and the operator, so all three refuse the same specs.
"""

import difflib
from collections.abc import Iterator
from typing import Any

from kubetune import conventions
from kubetune.builders.errors import BuildError
from kubetune.builders.substitute import placeholders, unknown_placeholder
from kubetune.metric_names import short_name, trainer_objectives
from kubetune.spec.parameters import edge_values
from kubetune.spec.resource import HyperparameterSweep, effective_spec
from kubetune.spec.sweep import SweepSpec
from kubetune.spec.trainer import TemplateSpec
from kubetune.spec.training_args import validate_args
from kubetune.spec.workload_rules import (
    is_trainjob,
    used_parameters,
    workload_kind,
    workload_problems,
)


def semantic_problems(sweep: HyperparameterSweep, *, for_cluster: bool = True) -> list[str]:
    """Problems a valid-looking spec still has, each naming the field path.

    for_cluster adds what only a cluster needs (an image for every template container);
    `kubetune run` starts the trial's command itself and passes False.
    """
    spec = effective_spec(sweep.spec)
    problems = _trainer_and_template_problems(sweep)
    problems += objective_problems(spec)
    problems += log_problems(spec)
    if spec.template is not None:
        problems += placeholder_problems(spec)
        if for_cluster:
            problems += image_problems(spec.template)
    if spec.workload is not None:
        known = [p.name for p in spec.parameters]
        problems += workload_problems(spec.workload, known, for_cluster=for_cluster)
        if not problems and is_trainjob(spec.workload) and spec.budget.trial_timeout is not None:
            # A TrainJob's pods come from its runtime's template, and the TrainJob API
            # (v1alpha1 podTemplateOverrides) has no way to give them activeDeadlineSeconds.
            problems.append(
                "spec.budget.trialTimeout: not with a TrainJob workload: the TrainJob API "
                "cannot give its pods a deadline (set activeDeadlineSeconds on the Jobs of "
                "its TrainingRuntime instead, and leave trialTimeout out)"
            )
        if spec.queue_name is not None and not problems and workload_kind(spec.workload).custom:
            problems.append(
                f"spec.queueName: kubetune cannot hold a {spec.workload.object.get('kind')} "
                "suspended for Kueue (a kind it does not know); leave queueName out"
            )
    problems += nodes_problems(sweep.name, spec, for_cluster=for_cluster)
    return problems


# A pod hostname is a DNS label; an Indexed Job names its pods' <job>-<index>.
_HOSTNAME_MAX = 63


def nodes_problems(name: str, spec: SweepSpec, *, for_cluster: bool) -> list[str]:
    """trainer.nodes > 1: a cluster's Indexed Job, whose pod hostnames must be DNS labels."""
    nodes = spec.trainer.nodes if spec.trainer is not None else None
    if nodes is None or nodes <= 1:
        return []
    if not for_cluster:
        return [
            f"spec.trainer.nodes: {nodes} nodes run on a cluster only (one pod per node); "
            "`kubetune run` runs one node: use trainer.gpus for several local processes"
        ]
    hostname = f"{conventions.trial_name(name, 0)}-{nodes - 1}"
    if len(hostname) > _HOSTNAME_MAX:
        room = len(name) - (len(hostname) - _HOSTNAME_MAX)
        return [
            f"spec.trainer.nodes: pod hostnames <trial>-<index> ({hostname!r}) must be at "
            f"most {_HOSTNAME_MAX} characters: shorten metadata.name to {max(1, room)} or fewer"
        ]
    return []


def semantic_warnings(sweep: HyperparameterSweep) -> list[str]:
    """Likely mistakes that may still be right: `kubetune validate` prints them, exit 0."""
    return unused_parameter_warnings(effective_spec(sweep.spec))


def log_problems(spec: SweepSpec) -> list[str]:
    """metrics.logs.filter must be an RE2 expression with a name and a value group."""
    logs = spec.metrics.logs
    if logs is None or logs.filter is None:
        return []
    # The parser lives with the operator's dependencies (RE2); the spec models stay light.
    from kubetune.metrics.log_lines import FilterError, compile_filter

    try:
        compile_filter(logs.filter)
    except FilterError as error:
        return [f"spec.metrics.logs.filter: {error}"]
    return []


def objective_problems(spec: SweepSpec) -> list[str]:
    """A built-in-trainer objective must be a value that trainer reports, or no trial ends well."""
    if spec.trainer is None:
        return []  # a template's program reports whatever series it likes
    mode = spec.trainer.mode
    reported = trainer_objectives(mode)
    problems = []
    for index, objective in enumerate(spec.objective_list):
        if objective.query is not None:
            # A custom query computes the value from any series it names; `metric` is only
            # the name that value goes by, so there is no trainer output to hold it against.
            continue
        name = short_name(objective.metric)
        if name in reported:
            continue
        where = "spec.objective" if spec.objectives is None else f"spec.objectives[{index}]"
        close = difflib.get_close_matches(name, reported, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(
            f"{where}.metric: the built-in trainer does not report {name!r}{hint}; "
            f"in {mode} mode it reports {', '.join(reported)}"
        )
    for index, name in enumerate(spec.additional_metrics):
        if name not in reported:
            problems.append(
                f"spec.additionalMetrics[{index}]: the built-in trainer does not report "
                f"{name!r}; in {mode} mode it reports {', '.join(reported)}"
            )
    return problems


def _template_containers(template: TemplateSpec) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field path, container) of every init and regular container that is a mapping."""
    for kind in ("initContainers", "containers"):
        items = template.spec.get(kind)
        if not isinstance(items, list):
            continue
        for position, item in enumerate(items):
            if isinstance(item, dict):
                yield f"spec.template.spec.{kind}[{position}]", item


def image_problems(template: TemplateSpec) -> list[str]:
    """Every container of a pod needs an image: the API server refuses the pod otherwise."""
    return [
        f"{field}.image: required (every container of a trial pod needs an image)"
        for field, container in _template_containers(template)
        if not (isinstance(container.get("image"), str) and container["image"].strip())
    ]


def placeholder_problems(spec: SweepSpec) -> list[str]:
    """Every ${params.NAME} must name a parameter: each trial would fail to build otherwise."""
    assert spec.template is not None
    known = [p.name for p in spec.parameters]
    problems = []
    for field, container in _template_containers(spec.template):
        try:
            found = placeholders(container, field)
        except BuildError as error:
            problems.append(f"{error.field}: {error.rule}")
            continue
        problems += [
            f"{path}: {unknown_placeholder(n, known)}" for path, n in found if n not in known
        ]
    return problems


def unused_parameter_warnings(spec: SweepSpec) -> list[str]:
    """A template parameter no placeholder names: fine if the program reads KUBETUNE_PARAMS."""
    used = set()
    if spec.workload is not None:
        used = used_parameters(spec.workload)
    elif spec.template is None:
        return []
    for field, container in _template_containers(spec.template) if spec.template else []:
        try:
            used |= {name for _, name in placeholders(container, field)}
        except BuildError:
            continue  # a problem already; semantic_problems names it
    return [
        f"spec.parameters[{index}].name: {param.name!r} appears in no ${{params.{param.name}}} "
        f"placeholder; fine if the program reads {conventions.ENV_PARAMS}, else it does nothing"
        for index, param in enumerate(spec.parameters)
        if param.name not in used
    ]


def _trainer_and_template_problems(sweep: HyperparameterSweep) -> list[str]:
    spec = effective_spec(sweep.spec)
    if spec.template is not None:
        return template_problems(spec.template)
    trainer = spec.trainer
    if trainer is None:
        return []
    problems = [f"spec.trainer.args.{p}" for p in validate_args(dict(trainer.args))]
    if not sweep.spec.parameters:
        return problems  # the default search space is known to be valid
    for index, param in enumerate(spec.parameters):
        # Every choice, or both ends of a range, must be a value the trainer accepts.
        for field, sample in edge_values(param):
            found = validate_args({param.name: sample})
            if found:
                where = "name" if "unknown trainer argument" in found[0] else field
                rule = found[0].removeprefix(f"{param.name}: ")
                problems.append(f"spec.parameters[{index}].{where}: {rule}")
                break
    return problems


def template_problems(template: TemplateSpec) -> list[str]:
    containers: Any = template.spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return ["spec.template.spec.containers: must list at least one container"]
    names = [c.get("name") for c in containers if isinstance(c, dict)]
    if len(names) != len(containers) or not all(isinstance(n, str) and n for n in names):
        return ["spec.template.spec.containers: every container needs a name"]
    if template.container is not None and template.container not in names:
        return [
            f"spec.template.container: no container named {template.container!r} "
            f"in spec.template.spec.containers (have {', '.join(map(str, names))})"
        ]
    return []
