"""`kubetune run` end to end on template sweeps: the fast trial script, no torch."""

import csv
import signal
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tests.local.cli import REPO, kubetune, read_state, start_kubetune
from tests.local.processes import live_processes_with
from tests.local.sweeps import template_sweep, write

pytestmark = pytest.mark.slow
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def rows(output: Path) -> list[dict[str, str]]:
    with (output / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_template_sweep_runs_and_writes_every_output(tmp_path: Path) -> None:
    sweep = write(
        tmp_path,
        template_sweep(
            script_args=["--steps", "4", "--sleep", "0.1"],
            budget={"maxTrials": 4, "parallelism": 2},
        ),
    )
    out = tmp_path / "out"
    done = kubetune("run", str(sweep), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\x1b[" not in done.stdout  # piped: plain lines, no terminal control codes
    assert "demo-t0000 started" in done.stdout
    assert "Best trial demo-t" in done.stdout and f"Outputs in {out}/" in done.stdout

    table = rows(out)
    assert [r["trial"] for r in table] == [f"demo-t000{i}" for i in range(4)]
    assert all(r["state"] == "Succeeded" for r in table)
    # The final value is the trial's own: (x - 0.3)**2 + 1/(1 + 4 steps).
    for row in table:
        expected = (float(row["x"]) - 0.3) ** 2 + 1 / 5
        assert float(row["eval_loss"]) == pytest.approx(expected, rel=1e-4)
    best = min(table, key=lambda r: float(r["eval_loss"]))
    assert yaml.safe_load((out / "best.yaml").read_text()) == {"x": pytest.approx(float(best["x"]))}
    for png in ("objective.png", "parallel_coordinates.png", "param_importance.png"):
        assert (out / png).read_bytes().startswith(PNG_MAGIC)
    study = optuna.load_study(
        study_name="demo", storage=JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    )
    assert len(study.trials) == 4
    assert study.best_value == pytest.approx(float(best["eval_loss"]), rel=1e-5)
    for row in table:
        assert (out / "trials" / row["trial"] / "trial.log").exists()


def test_a_deliberately_bad_trial_is_pruned(tmp_path: Path) -> None:
    sweep = write(
        tmp_path,
        template_sweep(
            script_args=["--steps", "40", "--sleep", "0.15", "--bad", "demo-t0002", "--flat"],
            budget={"maxTrials": 3, "parallelism": 1},
            early_stopping={"name": "asha", "minSteps": 2, "reductionFactor": 2},
            # Equal good trials: ASHA keeps ties, so only the bad one can lose.
            parameters=[{"name": "x", "type": "categorical", "values": [0.25]}],
        ),
    )
    out = tmp_path / "out"
    done = kubetune("run", str(sweep), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    states = {r["trial"]: r["state"] for r in rows(out)}
    assert states == {"demo-t0000": "Succeeded", "demo-t0001": "Succeeded", "demo-t0002": "Pruned"}
    assert "demo-t0002 pruned at step" in done.stdout
    # Stopped well before its 40 steps.
    pruned = next(r for r in read_state(out)["history"] if r["n"] == 2)  # type: ignore[attr-defined]
    assert pruned["st"] < 40


def test_multi_objective_sweep_prunes_a_dominated_trial(tmp_path: Path) -> None:
    manifest = template_sweep(
        script_args=[
            "--steps", "40", "--sleep", "0.15", "--bad", "demo-t0002", "--flat", "--extra",
            "--result",
        ],
        budget={"maxTrials": 3, "parallelism": 1},
        early_stopping={"name": "asha", "minSteps": 2, "reductionFactor": 2},
        parameters=[{"name": "x", "type": "categorical", "values": [0.25]}],
    )  # fmt: skip
    # The bad trial's loss is 10x and its Validation-accuracy (1 - loss) lower: dominated.
    del manifest["spec"]["objective"]
    manifest["spec"]["objectives"] = [
        {"metric": "eval_loss", "direction": "minimize"},
        {"metric": "Validation-accuracy", "direction": "maximize"},
    ]
    out = tmp_path / "out"
    done = kubetune("run", str(write(tmp_path, manifest)), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    states = {r["trial"]: r["state"] for r in rows(out)}
    assert states == {"demo-t0000": "Succeeded", "demo-t0001": "Succeeded", "demo-t0002": "Pruned"}
    pruned = next(r for r in read_state(out)["history"] if r["n"] == 2)  # type: ignore[attr-defined]
    assert pruned["st"] < 40
    assert len(pruned["io"]) == len(pruned["iv"])  # both objectives' intermediate values


def test_trial_timeout_fails_the_trial_with_reason_timeout(tmp_path: Path) -> None:
    sweep = write(
        tmp_path,
        template_sweep(
            script_args=["--steps", "1000", "--sleep", "0.1"],
            budget={"maxTrials": 2, "parallelism": 2, "trialTimeout": "3s", "maxFailedTrials": 5},
        ),
    )
    out = tmp_path / "out"
    started = time.monotonic()
    done = kubetune("run", str(sweep), "--output", str(out), "--grace", "5")
    assert time.monotonic() - started < 60
    # Nothing succeeded: the sweep has no result, exit 1.
    assert done.returncode == 1, done.stdout + done.stderr
    table = rows(out)
    assert [r["state"] for r in table] == ["Failed", "Failed"]
    assert all(r["reason"].startswith("Timeout: ran past budget.trialTimeout (3s)") for r in table)
    assert all(3 <= float(r["wall_seconds"]) < 30 for r in table)
    assert "No trial succeeded." in done.stdout and not (out / "best.yaml").exists()


def test_too_many_failures_fails_the_sweep(tmp_path: Path) -> None:
    sweep = write(
        tmp_path,
        template_sweep(
            script_args=["--steps", "2", "--sleep", "0.05", "--fail-trial", "demo-t0000"],
            budget={"maxTrials": 3, "parallelism": 1, "maxFailedTrials": 0},
        ),
    )
    out = tmp_path / "out"
    done = kubetune("run", str(sweep), "--output", str(out))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Sweep FAILED: 1 trials failed, more than budget.maxFailedTrials=0" in done.stdout
    table = rows(out)
    assert table[0]["state"] == "Failed"
    assert "deliberate failure" in table[0]["reason"]
    assert len(table) == 1  # no trial started after the sweep failed


def launch_logged_sweep(tmp: Path, steps: int, sleep: float, trials: int) -> tuple[Path, Path]:
    """A two-at-a-time sweep whose trials append their names to the returned log as they start."""
    launches = tmp / "launches.txt"
    script_args = ["--steps", str(steps), "--sleep", str(sleep), "--result"]
    manifest = template_sweep(
        script_args=[*script_args, "--launch-log", str(launches)],
        budget={"maxTrials": trials, "parallelism": 2},
    )
    return write(tmp, manifest), launches


def test_ctrl_c_then_resume_repeats_and_loses_no_trial(tmp_path: Path) -> None:
    sweep, launches = launch_logged_sweep(tmp_path, steps=25, sleep=0.2, trials=5)
    out = tmp_path / "out"
    first = start_kubetune("run", str(sweep), "--output", str(out), "--grace", "5")
    deadline = time.monotonic() + 120
    while True:  # interrupt once some trial finished and others are mid-way
        state = read_state(out) if (out / "state.json").exists() else {"history": []}
        history = state["history"]
        assert isinstance(history, list)
        if any(r["s"] == "Succeeded" for r in history) and any(
            r["s"] == "Running" for r in history
        ):
            break
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 130, stdout + stderr
    assert "--resume" in stdout

    stopped = read_state(out)["history"]
    assert isinstance(stopped, list)
    succeeded_before = {r["n"]: r for r in stopped if r["s"] == "Succeeded"}
    requeued = {r["n"]: r for r in stopped if r["s"] == "Requeued"}
    assert succeeded_before and requeued
    assert all(r["r"] == "Interrupted" for r in requeued.values())
    assert not any(r["s"] in ("Running", "Pending") for r in stopped)

    launched_before = launches.read_text().split()
    second = kubetune("run", str(sweep), "--output", str(out), "--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    final = read_state(out)["history"]
    assert isinstance(final, list)
    assert sorted(r["n"] for r in final) == [0, 1, 2, 3, 4]  # none lost, none extra
    assert all(r["s"] == "Succeeded" for r in final)
    by_number = {r["n"]: r for r in final}
    for number, record in succeeded_before.items():
        assert by_number[number]["v"] == record["v"]  # kept, not rerun
    for number, record in requeued.items():
        assert by_number[number]["p"] == record["p"]  # rerun with the same params
        assert by_number[number]["rq"] == 1

    launched_after = launches.read_text().split()[len(launched_before) :]
    assert len(launched_after) == len(set(launched_after))  # each at most once
    expected = {f"demo-t{n:04d}" for n in range(5) if n not in succeeded_before}
    assert set(launched_after) == expected  # the interrupted and the new, nothing finished
    assert len(rows(out)) == 5


def test_bad_inputs_exit_2_with_the_field_path(tmp_path: Path) -> None:
    def run(manifest: object, *extra: str) -> tuple[int, str]:
        path = tmp_path / "bad.yaml"
        path.write_text(manifest if isinstance(manifest, str) else yaml.safe_dump(manifest))
        done = kubetune("run", str(path), "--output", str(tmp_path / "out"), *extra)
        assert "Traceback" not in done.stderr
        return done.returncode, done.stderr

    code, err = run("spec: [unclosed\n")
    assert code == 2 and "malformed YAML: line" in err

    manifest = template_sweep()
    manifest["spec"]["algorithm"] = {"name": "bayes"}
    code, err = run(manifest)
    assert code == 2 and "spec.algorithm.name: must be one of" in err and "'bayes'" in err

    manifest = template_sweep()
    manifest["spec"]["budget"] = {"maxTrials": 2, "trialTimeout": "soon"}
    code, err = run(manifest)
    assert code == 2 and "spec.budget.trialTimeout" in err

    manifest = template_sweep()
    del manifest["spec"]["template"]["spec"]["containers"][0]["command"]
    code, err = run(manifest)
    assert code == 2
    assert "spec.template.spec.containers[0].command: required by kubetune run" in err

    manifest = template_sweep()
    manifest["spec"]["template"]["spec"]["containers"][0]["args"] = ["${params.y}"]
    code, err = run(manifest)
    assert code == 2 and "spec.template.spec.containers[0].args[0]: ${params.y} names no" in err

    code, err = run(template_sweep(), "--resume")
    assert code == 2 and err.startswith("--resume:") and "no run to resume" in err

    missing = kubetune("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "cannot read file" in missing.stderr


def test_multi_document_file_runs_the_sweep_named_by_name(tmp_path: Path) -> None:
    broken = template_sweep(name="a")
    broken["spec"]["algorithm"] = {"name": "bayes"}
    chosen = template_sweep(
        name="b", script_args=["--steps", "1", "--sleep", "0"], budget={"maxTrials": 1}
    )
    # A local trial runs its command: no image needed (a cluster would refuse this one).
    del chosen["spec"]["template"]["spec"]["containers"][0]["image"]
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump_all([broken, chosen]))

    unnamed = kubetune("run", str(path), "--output", str(tmp_path / "out"))
    assert unnamed.returncode == 2
    assert unnamed.stderr.strip() == f"{path}: holds 2 sweeps (a, b): choose one with --name NAME"
    wrong = kubetune("run", str(path), "--name", "c", "--output", str(tmp_path / "out"))
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == f"{path}: --name: no sweep named 'c' (have a, b)"
    done = kubetune("run", str(path), "--name", "b", "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [r["trial"] for r in rows(tmp_path / "out")] == ["b-t0000"]


def test_an_existing_run_needs_resume_or_overwrite(tmp_path: Path) -> None:
    manifest = template_sweep(script_args=["--steps", "1", "--sleep", "0"], budget={"maxTrials": 1})
    sweep = write(tmp_path, manifest)
    out = tmp_path / "out"
    assert kubetune("run", str(sweep), "--output", str(out)).returncode == 0
    again = kubetune("run", str(sweep), "--output", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr and "--overwrite" in again.stderr
    # A resumed study must keep its search space.
    manifest["spec"]["parameters"][0]["max"] = 2.0
    write(tmp_path, manifest)
    changed = kubetune("run", str(sweep), "--output", str(out), "--resume")
    assert changed.returncode == 2 and "spec.parameters: changed since the run" in changed.stderr
    fresh = kubetune("run", str(sweep), "--output", str(out), "--overwrite")
    assert fresh.returncode == 0, fresh.stderr


def test_custom_trainer_example_runs(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = kubetune("run", "examples/custom-trainer/sweep.yaml", "--output", str(out), cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(out)
    assert len(table) == 8
    finished = [float(r["eval_loss"]) for r in table if r["state"] == "Succeeded"]
    assert finished and min(finished) < 0.5  # a sensible lr fits the regression
    assert set(yaml.safe_load((out / "best.yaml").read_text())) == {"lr", "momentum"}


def test_kill_9_then_resume_requeues_the_running_trials(tmp_path: Path) -> None:
    sweep, launches = launch_logged_sweep(tmp_path, steps=200, sleep=0.1, trials=2)
    out = tmp_path / "out"
    first = start_kubetune("run", str(sweep), "--output", str(out))
    deadline = time.monotonic() + 60
    while not (launches.exists() and len(launches.read_text().split()) == 2):
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    first.kill()  # no chance to stop the trials or save anything more
    first.communicate(timeout=30)
    # The orphaned trials get SIGTERM from the kernel when kubetune dies.
    deadline = time.monotonic() + 30
    while live_processes_with(str(launches)):
        assert time.monotonic() < deadline, "trials outlived a kill -9 of kubetune"
        time.sleep(0.2)
    running = read_state(out)["history"]
    assert isinstance(running, list) and {r["s"] for r in running} == {"Running"}

    sweep.write_text(sweep.read_text().replace("'200'", "'3'"))
    second = kubetune("run", str(sweep), "--output", str(out), "--resume")
    assert second.returncode == 0, second.stdout + second.stderr
    final = read_state(out)["history"]
    assert isinstance(final, list)
    assert [(r["n"], r["s"], r["rq"]) for r in final] == [(0, "Succeeded", 1), (1, "Succeeded", 1)]
    assert sorted(launches.read_text().split()) == sorted(["demo-t0000", "demo-t0001"] * 2)


def test_strategy_and_additional_metrics_reach_trials_csv_and_best_yaml(tmp_path: Path) -> None:
    doc = template_sweep(
        script_args=["--steps", "4", "--sleep", "0.5", "--result", "--extra"],
        budget={"maxTrials": 2, "parallelism": 2},
    )
    # max over the reports: the loss falls with steps, so the first evaluation is the greatest.
    doc["spec"]["objective"]["strategy"] = "max"
    doc["spec"]["additionalMetrics"] = ["Validation-accuracy", "eval.f1"]
    out = tmp_path / "out"
    done = kubetune("run", str(write(tmp_path, doc)), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(out)
    assert list(table[0])[3:6] == ["eval_loss", "Validation-accuracy", "eval.f1"]
    for row in table:
        x = float(row["x"])
        assert float(row["eval_loss"]) == pytest.approx((x - 0.3) ** 2 + 1 / 2, rel=1e-4)
        assert row["step"] == "1"
        # From the result (the final value) and, not in the result, from the last reading.
        final = (x - 0.3) ** 2 + 1 / 5
        assert float(row["Validation-accuracy"]) == pytest.approx(1 - final, rel=1e-4)
        assert float(row["eval.f1"]) == 0.5
    header = (out / "best.yaml").read_text().splitlines()[0]
    assert "at step 1; also Validation-accuracy=" in header and "eval.f1=0.5" in header


def test_best_folder_links_the_best_trials_artifacts_and_overwrite_removes_it(
    tmp_path: Path,
) -> None:
    sweep = write(
        tmp_path,
        template_sweep(
            script_args=["--steps", "2", "--sleep", "0.05", "--result", "--artifacts"],
            budget={"maxTrials": 3, "parallelism": 1},
        ),
    )
    out = tmp_path / "out"
    done = kubetune("run", str(sweep), "--output", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    best = min(rows(out), key=lambda r: float(r["eval_loss"]))["trial"]
    final = out / "trials" / best / "final"
    # best/ is the best trial's final/, by a link that still works when out/ is moved.
    assert (out / "best").is_symlink() and (out / "best").resolve() == final.resolve()
    assert (out / "best" / "adapter.txt").read_text() == best
    assert not Path((out / "best").readlink()).is_absolute()
    header = (out / "best.yaml").read_text().splitlines()[1]
    assert header == f"# Artifacts: {final} (linked as best/)"
    again = kubetune("run", str(sweep), "--output", str(out), "--overwrite")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (out / "best").is_symlink()  # replaced, not refused as a leftover
