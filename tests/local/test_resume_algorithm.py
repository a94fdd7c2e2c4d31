"""--resume of a run started when tpe was the default algorithm (before auto)."""

from pathlib import Path
from typing import Any

import pytest

from kubetune.local.layout import STATE_FILE
from kubetune.local.session import BadInput, prepare
from kubetune.local.state import RunState, now, save_state, spec_dump
from kubetune.spec import effective_spec, parse_sweep
from tests.local.sweeps import template_sweep, write


def started_under_tpe(tmp_path: Path, manifest: dict[str, Any]) -> Path:
    """An output folder as an older kubetune left it: the saved spec has tpe filled in."""
    saved = dict(manifest, spec=dict(manifest["spec"], algorithm={"name": "tpe", "seed": 3}))
    spec = effective_spec(parse_sweep(saved, "saved").spec)
    out = tmp_path / "out"
    out.mkdir()
    save_state(out / STATE_FILE, RunState(sweep="demo", spec=spec_dump(spec), started_at=now()))
    return out


def test_resume_keeps_tpe_for_a_run_started_under_the_former_default(tmp_path: Path) -> None:
    manifest = template_sweep(algorithm={"seed": 3})  # no name: the default applies
    out = started_under_tpe(tmp_path, manifest)
    sweep = write(tmp_path, manifest)
    prepared = prepare(str(sweep), str(out), resume=True, overwrite=False)
    try:
        assert prepared.spec.algorithm.name == "tpe"
        assert prepared.engine.spec.algorithm.name == "tpe"
        assert prepared.state.spec["algorithm"]["name"] == "tpe"
    finally:
        prepared.release()


def test_resume_refuses_naming_another_algorithm_than_the_run_started_with(
    tmp_path: Path,
) -> None:
    manifest = template_sweep(algorithm={"seed": 3})
    out = started_under_tpe(tmp_path, manifest)
    manifest["spec"]["algorithm"] = {"name": "auto", "seed": 3}
    sweep = write(tmp_path, manifest)
    with pytest.raises(BadInput, match=r"spec\.algorithm: changed since the run"):
        prepare(str(sweep), str(out), resume=True, overwrite=False)


def test_a_new_run_without_an_algorithm_name_runs_auto(tmp_path: Path) -> None:
    sweep = write(tmp_path, template_sweep(algorithm={"seed": 3}))
    prepared = prepare(str(sweep), str(tmp_path / "new"), resume=False, overwrite=False)
    try:
        assert prepared.engine.spec.algorithm.name == "auto"
    finally:
        prepared.release()


def test_a_run_that_auto_prunes_says_so(tmp_path: Path) -> None:
    # Template trials that give their last step, 4 at once: the default turns ASHA on.
    manifest = template_sweep(
        early_stopping={"maxSteps": 80}, budget={"maxTrials": 8, "parallelism": 4}
    )
    prepared = prepare(str(write(tmp_path, manifest)), str(tmp_path / "a"), False, False)
    try:
        assert prepared.engine.spec.early_stopping.name == "asha"
        assert any(n.startswith("earlyStopping auto: asha (minSteps 10,") for n in prepared.notes)
    finally:
        prepared.release()
    # One at a time random search does not prune, and a run the user did not ask to prune
    # is quiet.
    manifest["spec"]["budget"] = {"maxTrials": 8, "parallelism": 1}
    prepared = prepare(str(write(tmp_path, manifest)), str(tmp_path / "b"), False, False)
    try:
        assert prepared.engine.spec.early_stopping.name == "none"
        assert not any("earlyStopping" in n for n in prepared.notes)
    finally:
        prepared.release()
    # One at a time with a model-based algorithm: the startup trials alone, said as well.
    manifest["spec"]["algorithm"] = {"name": "tpe", "seed": 3}
    prepared = prepare(str(write(tmp_path, manifest)), str(tmp_path / "c"), False, False)
    try:
        assert prepared.engine.spec.early_stopping.trials == "startup"
        assert any("startup trials only" in n for n in prepared.notes)
    finally:
        prepared.release()
