"""`kubetune run` never loses a user's files: --overwrite, the folder lock, leftover
processes of a killed run, and a full disk. Each through the real CLI, template trials."""

import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from kubetune.local.layout import LOCK_FILE, OUTPUT_NAMES
from tests.local.cli import kubetune, read_state, start_kubetune
from tests.local.processes import live_processes_with
from tests.local.sweeps import SCRIPT, template_sweep, write

pytestmark = pytest.mark.slow
FULL_DISK = Path(__file__).with_name("full_disk.py")
PNGS = ("objective.png", "parallel_coordinates.png", "param_importance.png")


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def user_files(folder: Path) -> dict[str, bytes]:
    """A user's own files in a folder that is also used as the output folder."""
    (folder / "data").mkdir(parents=True)
    files = {"notes.txt": b"my notes\n", "data/train.jsonl": b'{"text": "hi"}\n', "sweep.yaml": b""}
    for name, content in files.items():
        if content:
            (folder / name).write_bytes(content)
    return files


def quick_sweep(folder: Path, trials: int = 1) -> Path:
    manifest = template_sweep(
        script_args=["--steps", "1", "--sleep", "0"], budget={"maxTrials": trials}
    )
    return write(folder, manifest)


def test_overwrite_refuses_a_state_file_that_is_not_kubetunes(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    files = user_files(folder)
    sweep = quick_sweep(folder)
    (folder / "state.json").write_text('{"model": "mine"}\n')
    done = kubetune("run", str(sweep), "-o", ".", "--overwrite", cwd=folder)
    assert done.returncode == 2, done.stdout + done.stderr
    line = one_line_error(done.stderr)
    assert line.startswith("--overwrite: state.json: not a kubetune run state")
    assert "nothing was deleted" in line
    for name, content in files.items():
        if content:
            assert (folder / name).read_bytes() == content
    assert (folder / "state.json").read_text() == '{"model": "mine"}\n'
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["data", "notes.txt", "sweep.yaml", "state.json", LOCK_FILE]
    )


def test_a_folder_with_outputs_but_no_run_state_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    sweep = quick_sweep(folder)
    (folder / "best.yaml").write_text("lr: 0.1\n")  # the user's own best.yaml
    for flags in ([], ["--overwrite"]):
        done = kubetune("run", str(sweep), "-o", str(folder), *flags)
        assert done.returncode == 2, done.stdout + done.stderr
        line = one_line_error(done.stderr)
        assert f"--output: {folder} holds best.yaml but no state.json" in line
    assert (folder / "best.yaml").read_text() == "lr: 0.1\n"


def test_overwrite_replaces_only_kubetunes_own_outputs(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    files = user_files(folder)
    sweep = quick_sweep(folder, trials=4)
    first = kubetune("run", str(sweep), "-o", ".", cwd=folder)
    assert first.returncode == 0, first.stdout + first.stderr
    # Every name the run wrote is on the one list --overwrite removes (or is the lock).
    written = {p.name for p in folder.iterdir()} - {n.split("/")[0] for n in files}
    assert written <= {*OUTPUT_NAMES, LOCK_FILE}, written - {*OUTPUT_NAMES, LOCK_FILE}
    assert {"state.json", "trials", "trials.csv", "best.yaml", "optuna.journal", *PNGS} <= written
    (folder / "trials" / "stale-marker").write_text("from the old run")
    before = read_state(folder)["startedAt"]

    time.sleep(1.1)  # startedAt has whole seconds
    again = kubetune("run", str(sweep), "-o", ".", "--overwrite", cwd=folder)
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_state(folder)["startedAt"] != before
    assert not (folder / "trials" / "stale-marker").exists()
    for name, content in files.items():
        if content:
            assert (folder / name).read_bytes() == content
    assert (folder / "sweep.yaml").exists()


def test_a_second_run_on_a_locked_folder_is_refused(tmp_path: Path) -> None:
    launches = tmp_path / "launches.txt"
    manifest = template_sweep(
        script_args=["--steps", "300", "--sleep", "0.1", "--launch-log", str(launches)],
        budget={"maxTrials": 1},
    )
    sweep = write(tmp_path, manifest)
    out = tmp_path / "out"
    first = start_kubetune("run", str(sweep), "--output", str(out), "--grace", "2")
    try:
        deadline = time.monotonic() + 60
        while not launches.exists():
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run started no trial"
            time.sleep(0.1)
        for flags in ([], ["--resume"], ["--overwrite"]):
            second = kubetune("run", str(sweep), "--output", str(out), *flags)
            assert second.returncode == 2, second.stdout + second.stderr
            line = one_line_error(second.stderr)
            assert line == (
                f"--output: {out} is in use by another kubetune run (pid {first.pid}); one run "
                "per output folder: wait for it to end or choose another --output"
            )
        assert launches.read_text().split() == ["demo-t0000"]  # no trial ran twice
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130
    # The lock ends with its holder: the folder is free again.
    with (out / LOCK_FILE).open("rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)


def shell_wrapped_sweep(tmp: Path, launches: Path, steps: int, result: bool) -> Path:
    """One trial run as `sh -c "python trial_script.py ...; exit $?"`: the shell does not
    exec the script, so after a kill -9 of kubetune only the shell gets the kernel's SIGTERM."""
    script = (
        f"{sys.executable} {SCRIPT} --x ${{params.x}} --steps {steps} --sleep 0.1 "
        f"--launch-log {launches}{' --result' if result else ''}; exit $?"
    )
    manifest = template_sweep(budget={"maxTrials": 1})
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["command"], container["args"] = ["sh", "-c"], [script]
    return write(tmp, manifest)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_resume_ends_a_killed_runs_leftover_trial_and_takes_only_its_own_result(
    tmp_path: Path,
) -> None:
    launches = tmp_path / "launches.txt"
    # The first attempt would write its result (at step 80) while the second one runs.
    sweep = shell_wrapped_sweep(tmp_path, launches, steps=80, result=True)
    out = tmp_path / "out"
    first = start_kubetune("run", str(sweep), "--output", str(out))
    deadline = time.monotonic() + 60
    while not launches.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no trial started"
        time.sleep(0.1)
    first.kill()
    first.communicate(timeout=30)
    assert live_processes_with(str(launches)), "the shell-wrapped trial did not outlive kubetune"
    state = read_state(out)
    in_flight = state["inFlight"]
    assert isinstance(in_flight, dict) and set(in_flight) == {"0"}
    assert in_flight["0"]["token"].startswith("1-")  # attempt 1

    # The second attempt serves metrics only: its result is its last scrape, step 120.
    shell_wrapped_sweep(tmp_path, launches, steps=120, result=False)
    second = kubetune("run", str(sweep), "--output", str(out), "--resume", "--grace", "2")
    assert second.returncode == 0, second.stdout + second.stderr
    final = read_state(out)
    record = final["history"][0]  # type: ignore[index]
    assert (record["s"], record["rq"], record["st"]) == ("Succeeded", 1, 120)
    x = record["p"]["x"]
    assert record["v"][0] == pytest.approx((x - 0.3) ** 2 + 1 / 121, rel=1e-6)
    assert not live_processes_with(str(launches))
    assert launches.read_text().split() == ["demo-t0000", "demo-t0000"]
    assert "demo-t0000: ended processes left running by the previous run" in second.stdout
    assert final.get("inFlight", {}) == {}
    # The first attempt never wrote the result it was going to: it was ended first.
    assert not (out / "trials" / "demo-t0000" / "result.json").exists()


def test_a_full_disk_stops_the_run_with_one_line_and_resume_finishes_it(
    tmp_path: Path,
) -> None:
    launches = tmp_path / "launches.txt"
    manifest = template_sweep(
        script_args=["--steps", "5", "--sleep", "0.1", "--result", "--launch-log", str(launches)],
        budget={"maxTrials": 4, "parallelism": 1},
    )
    sweep = write(tmp_path, manifest)
    out = tmp_path / "out"
    flag = tmp_path / "disk-is-full"
    run = start_kubetune(
        "run", str(sweep), "--output", str(out), "--grace", "2",
        via=FULL_DISK, extra_env={"FULL_DISK_FLAG": str(flag)},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        history = read_state(out)["history"] if (out / "state.json").exists() else []
        assert isinstance(history, list)
        if any(r["s"] == "Succeeded" for r in history):
            break
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "no trial finished in time"
        time.sleep(0.1)
    flag.touch()
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, stdout + stderr
    line = one_line_error(stderr)
    assert line == (
        f"kubetune run: cannot write {out}/state.json: No space left on device; the run "
        f"stopped: free space, then continue with: kubetune run {sweep} --resume --output {out}"
    )
    saved = json.loads((out / "state.json").read_text())  # the last good copy, whole
    assert any(r["s"] == "Succeeded" for r in saved["history"])
    assert not (out / "state.json.tmp").exists()

    flag.unlink()
    resumed = kubetune("run", str(sweep), "--output", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    final = read_state(out)["history"]
    assert isinstance(final, list)
    assert [(r["n"], r["s"]) for r in final] == [(n, "Succeeded") for n in range(4)]


def test_a_full_disk_while_writing_the_plots_keeps_the_run_resumable(tmp_path: Path) -> None:
    sweep = quick_sweep(tmp_path, trials=1)
    out = tmp_path / "out"
    run = start_kubetune(
        "run", str(sweep), "--output", str(out), via=FULL_DISK, extra_env={"FULL_DISK_PLOTS": "1"}
    )
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stdout + stderr
    line = one_line_error(stderr)
    assert line == (
        f"kubetune run: cannot write the outputs in {out}: No space left on device; "
        f"{out}/state.json is saved: free space, then continue with: kubetune run {sweep} "
        f"--resume --output {out}"
    )
    assert read_state(out)["history"][0]["s"] == "Succeeded"  # type: ignore[index]
    resumed = kubetune("run", str(sweep), "--output", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (out / "objective.png").exists() and (out / "trials.csv").exists()


def test_overwrite_ends_a_killed_runs_leftover_trial(tmp_path: Path) -> None:
    launches = tmp_path / "launches.txt"
    sweep = shell_wrapped_sweep(tmp_path, launches, steps=300, result=True)
    out = tmp_path / "out"
    first = start_kubetune("run", str(sweep), "--output", str(out))
    deadline = time.monotonic() + 60
    while not launches.exists():
        assert first.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate(timeout=30)
    assert live_processes_with(str(launches))
    shell_wrapped_sweep(tmp_path, launches, steps=1, result=True)
    again = kubetune("run", str(sweep), "--output", str(out), "--overwrite", "--grace", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    assert not live_processes_with(str(launches))
    assert "ended processes left running by the previous run" in again.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")
def test_a_trials_background_process_ends_with_the_trial(tmp_path: Path) -> None:
    """As in a pod: when the trial's own process exits, what it left running is ended."""
    marker = str(tmp_path / "background-worker")
    worker = f"{sys.executable} -c 'import time; time.sleep(300)' {marker}"
    manifest = template_sweep(budget={"maxTrials": 1})
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["sh", "-c"]
    container["args"] = [
        f"{worker} & {sys.executable} {SCRIPT} --x ${{params.x}} --steps 1 --sleep 0 --result"
    ]
    sweep = write(tmp_path, manifest)
    done = kubetune("run", str(sweep), "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not live_processes_with(marker)
