"""LogSource (pods/log) and LogFileSource (trial.log): incremental reads, restarts, attempts.

The operator's pods/log transport is exercised against the simulated cluster in
tests/operator/test_log_metrics.py; here the stream is a growing byte string.
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from kubetune.engine import SweepEngine
from kubetune.metrics import MetricsUnavailable, TrialReading, TrialTarget
from kubetune.metrics.logs import LogFileSource, LogReading, LogSource, log_reading
from kubetune.spec import SweepSpec
from tests.engine.helpers import through_json

TRIAL = "s-t0000"


def log_spec(logs: dict[str, object] | None = None) -> SweepSpec:
    return SweepSpec.model_validate(
        {
            "objective": {"metric": "loss"},
            "parameters": [{"name": "x", "type": "float", "min": 0, "max": 1}],
            "algorithm": {"name": "random", "seed": 1},
            "budget": {"maxTrials": 1},
            "metrics": {"logs": logs or {}},
            "template": {"spec": {"containers": [{"name": "t", "image": "i"}]}},
        }
    )


class Pod:
    """A pod's log that grows; served in small chunks, as a stream arrives."""

    def __init__(self) -> None:
        self.log = b""
        self.streams = 0
        self.broken = False

    async def stream(self, namespace: str, pod: str, container: str | None) -> AsyncIterator[bytes]:
        self.streams += 1
        if self.broken:
            raise MetricsUnavailable("container not started")
        for start in range(0, len(self.log), 7):
            yield self.log[start : start + 7]


def reading_of(spec: SweepSpec) -> LogReading:
    reading = log_reading(spec)
    assert reading is not None
    return reading


def collect(source: LogSource, target: TrialTarget) -> TrialReading | None:
    return asyncio.run(source.collect("ns", "s", [target])).get(TRIAL)


def test_log_reading_is_chosen_only_by_spec_metrics_logs() -> None:
    spec = log_spec({"format": "json", "stepKey": "it"})
    chosen = reading_of(spec)
    assert (chosen.format, chosen.step_key, chosen.objective) == ("json", "it", "loss")
    plain = spec.model_copy(update={"metrics": spec.metrics.model_copy(update={"logs": None})})
    assert log_reading(plain) is None


def test_each_pass_parses_only_the_new_bytes() -> None:
    pod = Pod()
    source = LogSource(reading_of(log_spec()), pod.stream)
    target = TrialTarget(TRIAL, uid="u1", container="t")
    pod.log = b"epoch=1 loss=0.9\nepoch=2 loss=0.8\nepoch=3 lo"
    first = collect(source, target)
    assert first is not None and first.evaluation("loss") == (2, 0.8)
    pod.log += b"ss=0.7\n"
    second = collect(source, target)
    assert second is not None and second.evaluation("loss") == (3, 0.7)
    parser = source._parsers.get(TRIAL, "u1")
    assert parser.lines == 3 and parser.consumed == len(pod.log)


def test_an_operator_restart_rereads_the_log_and_counts_nothing_twice() -> None:
    for text_of in (lambda e: f"epoch={e} loss={1 - e / 10}\n", lambda e: f"loss={1 - e / 10}\n"):
        spec = log_spec()
        pod = Pod()
        engine = SweepEngine(spec, "s")
        (plan,) = engine.start_trials()
        assert plan.number == 0
        target = TrialTarget(plan.name, uid="u1", container="t")

        def report(engine: SweepEngine, reading: TrialReading | None, number: int = 0) -> bool:
            evaluation = reading.evaluation("loss") if reading else None
            return evaluation is not None and engine.report(number, *evaluation)

        before = LogSource(reading_of(spec), pod.stream)
        seen = []
        for epoch in range(4):
            pod.log += text_of(epoch).encode()
            reading = collect(before, target)
            assert report(engine, reading)
            seen.append(reading.evaluation("loss") if reading else None)
        # The operator restarts: its engine comes back from the stored status, its reader
        # remembers nothing and reads the log from the first byte.
        engine = SweepEngine(spec, "s", through_json(engine.history()))
        after = LogSource(reading_of(spec), pod.stream)
        again = collect(after, target)
        assert again is not None and again.evaluation("loss") == seen[-1]  # same step
        assert not report(engine, again)  # the engine already has it: not counted twice
        pod.log += text_of(4).encode()
        assert report(engine, collect(after, target))  # the next one is not lost
        steps = [step for step, _ in engine.trial(plan.number).intermediate or []]
        assert steps == [1, 2, 3, 4, 5]


def test_an_ended_pod_gives_its_last_line_and_a_new_attempt_starts_over() -> None:
    pod = Pod()
    source = LogSource(reading_of(log_spec()), pod.stream)
    pod.log = b"loss=0.9\nloss=0.5"
    running = collect(source, TrialTarget(TRIAL, uid="u1"))
    assert running is not None and running.value("loss") == 0.9
    ended = collect(source, TrialTarget(TRIAL, uid="u1", ended=True))
    assert ended is not None and ended.evaluation("loss") == (2, 0.5)
    # A requeued trial's new pod (same name, new uid) has its own log.
    pod.log = b"loss=0.4\n"
    rerun = collect(source, TrialTarget(TRIAL, uid="u2"))
    assert rerun is not None and rerun.evaluation("loss") == (1, 0.4)


def test_a_log_that_shrank_is_read_anew_and_an_unreadable_one_is_left_out() -> None:
    pod = Pod()
    source = LogSource(reading_of(log_spec()), pod.stream)
    target = TrialTarget(TRIAL, uid="u1")
    pod.log = b"step=1 loss=0.9\nstep=2 loss=0.8\n"
    collect(source, target)
    pod.log = b"step=3 loss=0.7\n"  # rotated away under us
    collect(source, target)
    anew = collect(source, target)
    assert anew is not None and anew.evaluation("loss") == (3, 0.7)
    pod.broken = True
    assert collect(source, target) is None


def test_trials_no_longer_read_are_forgotten() -> None:
    pod = Pod()
    source = LogSource(reading_of(log_spec()), pod.stream)
    pod.log = b"loss=1\n"
    collect(source, TrialTarget(TRIAL, uid="u1"))
    asyncio.run(source.collect("ns", "s", []))
    assert source._parsers.names() == []


def test_local_log_file_read_from_this_attempts_start(tmp_path: Path) -> None:
    path = tmp_path / "trial.log"
    path.write_bytes(b"epoch=1 loss=0.1\nepoch=2 loss=0.05\n")  # an earlier attempt's lines
    start = path.stat().st_size
    files = LogFileSource(reading_of(log_spec()))
    assert files.read(TRIAL, "a2", path, start=start) is None
    with path.open("ab") as log:
        log.write(b"epoch=1 loss=0.9\nloss=0.8")
    running = files.read(TRIAL, "a2", path, start=start)
    assert running is not None and running.evaluation("loss") == (1, 0.9)
    final = files.read(TRIAL, "a2", path, start=start, ended=True)
    assert final is not None and final.evaluation("loss") == (1, 0.8)
    assert files.read(TRIAL, "a3", tmp_path / "missing.log") is None
