"""Rules that need more than the spec models: trainer argument names and types."""

from kubetune.spec.resource import HyperparameterSweep, effective_spec


def semantic_problems(sweep: HyperparameterSweep) -> list[str]:
    """Problems a valid-looking spec still has, each naming the field path."""
    spec = effective_spec(sweep.spec)
    trainer = spec.trainer
    if trainer is None:
        return []
    try:
        from kubetune_trainer.arguments import validate_args
    except ImportError:  # the trainer's schema ships in the same distribution; be lenient if absent
        return []
    problems = [f"spec.trainer.args.{p}" for p in validate_args(dict(trainer.args))]
    for index, param in enumerate(spec.parameters):
        if not sweep.spec.parameters:
            break  # the default search space is known to be valid
        # Every choice, or both ends of a range, must be a value the trainer accepts.
        for sample in _samples(param):
            found = validate_args({param.name: sample})
            problems.extend(f"spec.parameters[{index}]: {p}" for p in found)
            if found:
                break
    return problems


def _samples(param: object) -> list[object]:
    values = getattr(param, "values", None)
    if values:
        return list(values)
    return [getattr(param, "min", None), getattr(param, "max", None)]
