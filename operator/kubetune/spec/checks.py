"""Rules beyond the models' own: the pod template's containers, trainer argument names and types.

Shared by `kubetune validate`, `kubetune run` and the operator, so all three refuse the same specs.
"""

from typing import Any

from kubetune.spec.resource import HyperparameterSweep, effective_spec
from kubetune.spec.trainer import TemplateSpec
from kubetune.spec.training_args import validate_args


def semantic_problems(sweep: HyperparameterSweep) -> list[str]:
    """Problems a valid-looking spec still has, each naming the field path."""
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
        for field, sample in _samples(param):
            found = validate_args({param.name: sample})
            if found:
                where = "name" if "unknown trainer argument" in found[0] else field
                rule = found[0].removeprefix(f"{param.name}: ")
                problems.append(f"spec.parameters[{index}].{where}: {rule}")
                break
    return problems


def _samples(param: object) -> list[tuple[str, object]]:
    values = getattr(param, "values", None)
    if values:
        return [(f"values[{i}]", value) for i, value in enumerate(values)]
    return [("min", getattr(param, "min", None)), ("max", getattr(param, "max", None))]


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
