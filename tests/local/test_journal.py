"""One journal writer for both runtimes: a cluster sweep's history exported by `kubetune
export` opens in optuna-dashboard exactly as the local run of the same trials does."""

import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from kubetune.commands.export import write as export_write
from kubetune.engine import SweepEngine
from kubetune.journal import TRIAL_ATTR
from kubetune.local.report import write_outputs
from kubetune.spec import SweepSpec, SweepStatus, effective_spec

PARAMETERS: list[dict[str, Any]] = [
    {"name": "lr", "type": "float", "min": 1e-5, "max": 1e-2, "log": True},
    {"name": "r", "type": "int", "min": 4, "max": 32, "step": 4},
    {"name": "warm", "type": "float", "min": 0.0, "max": 0.3, "step": 0.05},
    # 1, 1.0 and True are one choice to Optuna's ==: handed over as type-tagged strings.
    {"name": "flag", "type": "categorical", "values": [1, 1.0, True, "x"]},
]


def manifest(objectives: list[dict[str, str]]) -> dict[str, Any]:
    objective: dict[str, Any] = (
        {"objective": objectives[0]} if len(objectives) == 1 else {"objectives": objectives}
    )
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "demo", "namespace": "team"},
        "spec": {
            **objective,
            "algorithm": {"name": "random", "seed": 7},
            # A multi-objective sweep prunes with MO-ASHA.
            "earlyStopping": {"name": "asha", "minSteps": 1},
            "budget": {"maxTrials": 6, "parallelism": 2, "maxFailedTrials": 5},
            "parameters": PARAMETERS,
            "template": {"spec": {"containers": [{"name": "t", "image": "i"}]}},
        },
    }


def drive(spec: SweepSpec) -> SweepEngine:
    """A live sweep through every state: succeeded, failed, pruned, requeued then
    succeeded, one still running at the end, one succeeded without a report."""
    engine = SweepEngine(spec, "demo")
    width = len(spec.objective_list)

    def done(number: int, base: float) -> None:
        engine.complete(number, [base + k for k in range(width)], 30)

    def report(number: int, step: int, value: float) -> None:
        engine.report(number, step, [value + k for k in range(width)])

    first, second = (p.number for p in engine.start_trials())
    for number in (first, second):
        engine.mark_running(number)
    for step, value in ((1, 0.9), (3, 0.7), (9, 0.5)):
        report(first, step, value)
    done(first, 0.4)
    report(second, 1, 1.2)
    engine.fail(second, "Error: exit code 1")

    pruned, requeued = (p.number for p in engine.start_trials())
    report(pruned, 1, 1.4)
    report(pruned, 3, 1.3)
    engine.prune(pruned)
    report(requeued, 1, 0.8)
    engine.requeue(requeued, "Preempted")

    again, running = (p.number for p in engine.start_trials())
    assert again == requeued
    report(requeued, 3, 0.6)
    done(requeued, 0.3)
    report(running, 1, 0.95)

    (silent,) = (p.number for p in engine.start_trials())
    engine.mark_running(silent)
    done(silent, 0.35)
    assert engine.running() == [running]
    return engine


def load(path: Path) -> optuna.Study:
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.load_study(study_name="demo", storage=storage)


def observable(trial: FrozenTrial) -> tuple[Any, ...]:
    return (
        trial.number,
        trial.user_attrs,
        trial.state,
        trial.params,
        trial.distributions,
        trial.values,
        trial.intermediate_values,
    )


@pytest.mark.parametrize(
    "objectives",
    [
        [{"metric": "eval_loss", "direction": "minimize"}],
        [
            {"metric": "eval_loss", "direction": "minimize"},
            {"metric": "accuracy", "direction": "maximize"},
        ],
    ],
    ids=["single", "multi"],
)
def test_export_of_a_history_matches_the_local_journal(
    tmp_path: Path, objectives: list[dict[str, str]]
) -> None:
    body = manifest(objectives)
    spec = effective_spec(SweepSpec.model_validate(body["spec"]))
    engine = drive(spec)

    local_dir = tmp_path / "local"
    local_dir.mkdir()
    outputs = write_outputs(local_dir, "demo", spec, engine, {})
    assert "optuna.journal" in outputs.files

    # The cluster's copy: the history as the operator stores it in status, read back.
    body["status"] = SweepStatus(history=engine.history()).to_patch()
    exported = tmp_path / "cluster.journal"
    assert export_write(body, exported) == 5

    local, cluster = load(local_dir / "optuna.journal"), load(exported)
    assert cluster.study_name == local.study_name == "demo"
    assert cluster.directions == local.directions
    assert len(cluster.directions) == len(objectives)
    assert [observable(t) for t in cluster.trials] == [observable(t) for t in local.trials]

    assert [t.state for t in cluster.trials] == [
        TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]  # fmt: skip
    # Trial 4 is still running: left out, and Optuna renumbers without gaps, so each
    # trial names the kubetune trial (and pod) it is.
    assert [t.user_attrs[TRIAL_ATTR] for t in cluster.trials] == [
        "demo-t0000", "demo-t0001", "demo-t0002", "demo-t0003", "demo-t0005",
    ]  # fmt: skip
    resumed = cluster.trials[3]
    # Both attempts' reports; Optuna's multi-objective studies hold none (the engine's
    # records do: engine.report).
    single = len(objectives) == 1
    assert resumed.intermediate_values == ({1: 0.8, 3: 0.6} if single else {})
    assert set(resumed.distributions) == {p["name"] for p in PARAMETERS}


def test_a_history_the_spec_cannot_hold_is_an_error_naming_the_trial(tmp_path: Path) -> None:
    body = manifest([{"metric": "eval_loss", "direction": "minimize"}])
    body["status"] = {
        "history": [
            {
                "n": 0,
                "s": "Succeeded",
                "p": {"lr": 5.0, "r": 8, "warm": 0.1, "flag": "x"},
                "v": [1.0],
            }
        ]
    }
    with pytest.raises(ValueError, match=r"status\.history: .*trial 0"):
        export_write(body, tmp_path / "out.journal")
    assert not (tmp_path / "out.journal").exists()


def test_a_status_that_does_not_parse_names_the_field(tmp_path: Path) -> None:
    body = manifest([{"metric": "eval_loss", "direction": "minimize"}])
    body["status"] = {"history": [{"n": 0, "s": "Exploded"}]}
    with pytest.raises(
        ValueError, match=re.escape("cannot read: status.history.0.s: Input should be")
    ):
        export_write(body, tmp_path / "out.journal")


def test_an_invalid_spec_is_an_error_naming_the_sweep(tmp_path: Path) -> None:
    body = manifest([{"metric": "eval_loss", "direction": "minimize"}])
    del body["spec"]["parameters"]
    with pytest.raises(ValueError, match=r"sweep demo has an invalid spec: .*spec\.parameters"):
        export_write(body, tmp_path / "out.journal")
