"""`kubetune export` against the simulated cluster: a sweep's status.history becomes an
Optuna journal optuna-dashboard opens; a missing sweep or an unwritable file is one clear
line and exit 1, no traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from kubetune.cli import main as kubetune_main
from tests.cluster.cluster import Cluster

SWEEP: dict[str, Any] = {
    "apiVersion": "kubetune.dev/v1alpha1",
    "kind": "HyperparameterSweep",
    "metadata": {"name": "exported"},
    "spec": {
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "suspend": True,  # no operator runs here; the status below is the history
        "parameters": [
            {"name": "x", "type": "float", "min": 0.0, "max": 1.0},
            {"name": "kind", "type": "categorical", "values": ["a", "b"]},
        ],
        "template": {"spec": {"containers": [{"name": "t", "image": "i"}]}},
    },
}
HISTORY: list[dict[str, Any]] = [
    {"n": 0, "s": "Succeeded", "p": {"x": 0.25, "kind": "a"}, "v": [0.5], "st": 9,
     "iv": [[1, 0.9], [9, 0.5]]},
    {"n": 1, "s": "Failed", "p": {"x": 0.75, "kind": "b"}, "r": "Error: exit code 1"},
    {"n": 2, "s": "Pruned", "p": {"x": 0.5, "kind": "b"}, "st": 3, "iv": [[1, 1.1], [3, 1.0]]},
    {"n": 3, "s": "Running", "p": {"x": 0.1, "kind": "a"}, "iv": [[1, 0.8]]},
]  # fmt: skip


@pytest.fixture
def sweep(crd: Cluster, namespace: str) -> str:
    crd.create({**SWEEP, "metadata": {**SWEEP["metadata"], "namespace": namespace}})
    patched = crd.kubectl(
        "patch", "hps", "exported", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": {"phase": "Running", "history": HISTORY}}),
    )  # fmt: skip
    assert patched.returncode == 0, patched.stderr
    return namespace


def test_export_writes_the_history_as_a_journal(
    crd: Cluster, sweep: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study.journal"
    args = ["export", "exported", "-n", sweep, "-o", str(out), "--kubeconfig", str(crd.kubeconfig)]
    assert kubetune_main(args) == 0
    assert f"wrote 3 finished trial(s) of exported to {out}" in capsys.readouterr().out

    study = optuna.load_study(
        study_name="exported", storage=JournalStorage(JournalFileBackend(str(out)))
    )
    assert study.directions == [optuna.study.StudyDirection.MINIMIZE]
    done, failed, pruned = study.trials  # the running trial is left out
    assert (done.state, failed.state, pruned.state) == (
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.PRUNED,
    )
    assert done.params == {"x": 0.25, "kind": "a"} and done.values == [0.5]
    assert done.intermediate_values == {1: 0.9, 9: 0.5}
    assert done.distributions == {
        "x": FloatDistribution(0.0, 1.0),
        "kind": CategoricalDistribution(["a", "b"]),
    }
    assert failed.values is None
    assert pruned.values == [1.0]  # Optuna keeps a pruned trial's last intermediate value
    assert study.best_trial.user_attrs == {"trial": "exported-t0000"}

    # Run again: the file is replaced, not appended to (a journal is append-only).
    assert kubetune_main(args) == 0
    again = optuna.load_study(
        study_name="exported", storage=JournalStorage(JournalFileBackend(str(out)))
    )
    assert len(again.trials) == 3


def test_missing_sweep_is_one_line_and_exit_1(
    crd: Cluster, namespace: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "study.journal"
    code = kubetune_main(
        ["export", "nope", "-n", namespace, "-o", str(out), "--kubeconfig", str(crd.kubeconfig)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"kubetune export: sweep {namespace}/nope not found\n"
    assert not out.exists()
    # `kubetune best` reads the sweep through the same code.
    code = kubetune_main(["best", "nope", "-n", namespace, "--kubeconfig", str(crd.kubeconfig)])
    assert (code, capsys.readouterr().err) == (
        1,
        f"kubetune best: sweep {namespace}/nope not found\n",
    )


@pytest.mark.parametrize("where", ["missing-dir/study.journal", "."], ids=["no-dir", "a-dir"])
def test_unwritable_output_is_one_line_and_exit_1(
    crd: Cluster,
    sweep: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    out = tmp_path / where
    code = kubetune_main(
        ["export", "exported", "-n", sweep, "-o", str(out), "--kubeconfig", str(crd.kubeconfig)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"kubetune export: cannot write {out}: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unreachable_cluster_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\n")  # no context at all
    code = kubetune_main(["export", "x", "-n", "ns", "--kubeconfig", str(config)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("kubetune export: cannot read the sweep: ")
    assert err.count("\n") == 1
