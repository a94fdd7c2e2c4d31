from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

BASE: dict[str, Any] = {
    "apiVersion": "kubetune.dev/v1alpha1",
    "kind": "HyperparameterSweep",
    "metadata": {"name": "demo"},
    "spec": {
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "algorithm": {"name": "tpe", "seed": 7},
        "budget": {"maxTrials": 8, "parallelism": 2},
        "parameters": [
            {"name": "learning_rate", "type": "float", "min": 5e-5, "max": 5e-4, "log": True},
            {"name": "lora_r", "type": "categorical", "values": [8, 16]},
        ],
        "trainer": {"model": "tiny", "maxSteps": 40, "evalEvery": 10},
    },
}


def manifest(**spec_changes: Any) -> dict[str, Any]:
    """BASE with spec fields replaced; a value of None deletes the field."""
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in spec_changes.items():
        if value is None:
            doc["spec"].pop(key, None)
        else:
            doc["spec"][key] = value
    return doc


@pytest.fixture
def write_manifest(tmp_path: Path) -> Callable[[Any], Path]:
    def write(doc: Any) -> Path:
        path = tmp_path / "sweep.yaml"
        path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
        return path

    return write
