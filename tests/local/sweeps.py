"""Sweep manifests for the local-run tests, written to temp files."""

import sys
from pathlib import Path
from typing import Any

import yaml

SCRIPT = str(Path(__file__).with_name("trial_script.py"))


def template_sweep(
    name: str = "demo",
    script_args: list[str] | None = None,
    budget: dict[str, Any] | None = None,
    early_stopping: dict[str, Any] | None = None,
    algorithm: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": name},
        "spec": {
            "objective": {"metric": "eval_loss", "direction": "minimize"},
            "algorithm": algorithm or {"name": "random", "seed": 3},
            "earlyStopping": early_stopping or {"name": "none"},
            "budget": budget or {"maxTrials": 3, "parallelism": 1},
            "parameters": parameters or [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}],
            "metrics": {"interval": "1s"},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "trial",
                            "image": "example/quadratic:1",
                            "command": [sys.executable, SCRIPT],
                            "args": ["--x", "${params.x}", *(script_args or [])],
                        }
                    ]
                }
            },
        },
    }


def write(tmp_path: Path, manifest: dict[str, Any], name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path
