"""`kubetune best`: the best trial as YAML to reuse, and clear errors without one."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kubetune.commands.best import render


def sweep_body(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "demo", "namespace": "ns", "uid": "u"},
        "spec": spec,
        "status": status,
    }


BEST = {
    "trial": "demo-t0003",
    "number": 3,
    "value": 0.81,
    "step": 200,
    "parameters": {"learning_rate": 0.0002, "lora_r": 16},
}


def test_trainer_sweep_prints_trainer_args() -> None:
    spec = {"trainer": {"model": "tiny", "args": {"per_device_train_batch_size": 8}}}
    text = render(sweep_body(spec, {"phase": "Succeeded", "objective": "eval_loss", "best": BEST}))
    assert text.splitlines()[0] == "# Best trial of demo: demo-t0003, eval_loss=0.81 at step 200"
    assert yaml.safe_load(text) == {
        "trainer": {
            "args": {"per_device_train_batch_size": 8, "learning_rate": 0.0002, "lora_r": 16}
        }
    }


def test_template_sweep_prints_plain_parameters() -> None:
    spec = {
        "parameters": [{"name": "x", "type": "float", "min": 0, "max": 1}],
        "template": {"spec": {"containers": [{"name": "t", "image": "i"}]}},
    }
    best = {**BEST, "parameters": {"x": 0.25}}
    text = render(sweep_body(spec, {"phase": "Running", "objective": "eval_loss", "best": best}))
    assert yaml.safe_load(text) == {"x": 0.25}


def test_no_best_yet_is_an_error_naming_the_phase() -> None:
    with pytest.raises(ValueError, match="no succeeded trial yet \\(phase Running\\)"):
        render(sweep_body({"trainer": {}}, {"phase": "Running"}))


def test_the_best_trials_artifacts_are_named_under_the_header() -> None:
    spec = {"trainer": {"model": "tiny"}}
    best = {**BEST, "artifacts": "/output/demo-t0003/final"}
    text = render(sweep_body(spec, {"phase": "Succeeded", "objective": "eval_loss", "best": best}))
    assert text.splitlines()[1] == "# Artifacts: /output/demo-t0003/final"
    assert "Artifacts" not in render(
        sweep_body(spec, {"phase": "Succeeded", "objective": "eval_loss", "best": BEST})
    )
