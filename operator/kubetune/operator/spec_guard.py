"""The parts of a sweep that may not change while it runs: search space and objectives.

Trials already run were sampled from one space and judged by one objective; a new
space or objective would make the history meaningless, so such edits are refused.
Budget, parallelism, suspend, the objective's target and the trial pod settings may change.
"""

import hashlib
import json

from kubetune.spec import SweepSpec


def search_space_hash(spec: SweepSpec) -> str:
    """Stable hash of the effective spec's parameters and objectives (metric, direction, query)."""
    frozen = {
        "parameters": [p.model_dump(by_alias=True, mode="json") for p in spec.parameters],
        "objectives": [
            {"metric": o.metric, "direction": o.direction, "query": o.query}
            for o in spec.objective_list
        ],
    }
    text = json.dumps(frozen, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
