"""The best trial as a user takes it away: its scores in one line, its settings as YAML.

Shared by `kubetune run` (best.yaml) and `kubetune best` (a cluster sweep's status).
"""

import yaml

from kubetune.spec import BestTrial, SweepSpec


def best_document(spec: SweepSpec, best: BestTrial) -> dict[str, object]:
    """The best parameters in the shape the sweep file takes them back.

    Built-in trainer: a `trainer.args` block (the sweep's fixed args with the winning
    parameters on top). Template: the plain parameters.
    """
    if spec.trainer is not None:
        args: dict[str, object] = dict(spec.trainer.args)
        args.update(best.parameters)
        return {"trainer": {"args": args}}
    return dict(best.parameters)


def best_scores(metrics: list[str], best: BestTrial) -> str:
    """`eval_loss=0.41 at step 120; also accuracy=0.9`: the best trial's objective values,
    then its spec.additionalMetrics, for a header line."""
    values = best.values if best.values is not None else [best.value]
    scores = ", ".join(f"{m}={v}" for m, v in zip(metrics, values, strict=False))
    scores += f" at step {best.step}" if best.step is not None else ""
    if best.metrics:
        scores += "; also " + ", ".join(f"{m}={v}" for m, v in best.metrics.items())
    return scores


def artifacts_line(best: BestTrial, local_link: str | None = None) -> str:
    """`# Artifacts: PATH` (the trained adapter or model, tokenizer, parameters), or ""."""
    if best.artifacts is None:
        return ""
    also = f" (linked as {local_link}/)" if local_link else ""
    return f"# Artifacts: {best.artifacts}{also}\n"


def best_yaml(spec: SweepSpec, best: BestTrial) -> str:
    """best_document as YAML, keys in the order a sweep file has them."""
    return yaml.safe_dump(best_document(spec, best), sort_keys=False)
