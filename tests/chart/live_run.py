"""A tiny sweep scraped by a real Prometheus, for running every dashboard and alert query.

Two trials run as real processes serving /metrics: one trains to the end, the other is
stopped with SIGTERM part way, the way the operator prunes. The operator's own metrics
(kubetune.operator.metrics, on its real HTTP exposition) are driven by a small reconcile
loop that reads the trials' state from Prometheus, as the operator does. Prometheus
scrapes all of it every second under the job names the chart's monitors would give.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import start_http_server

from kubetune import conventions, metric_names
from kubetune.operator.metrics import OperatorMetrics
from kubetune.spec.status import TrialCounts
from tests.chart.prometheus import Prometheus, ScrapeJob, free_port, prometheus_server

NAMESPACE = "ml-team"
SWEEP = "demo"
# The chart's operator job for a release named "kubetune" in namespace "kubetune": a
# ServiceMonitor names the job after the Service (tests check the rendered name matches).
OPERATOR_JOB = "kubetune"
OPERATOR_NAMESPACE = "kubetune"
MAX_STEPS = 40
PRUNE_AT_STEP = 16
TRIAL_COMMAND = [sys.executable, "-m", "tests.chart.standin_trainer"]


@dataclass(frozen=True)
class ScrapedRun:
    prometheus: Prometheus
    start: float
    end: float
    trials: tuple[str, ...]
    exit_codes: dict[str, int]

    def variables(self) -> dict[str, str]:
        """Values for the dashboards' variables, as Grafana would interpolate them."""
        return {
            "datasource": "prometheus",
            "namespace": NAMESPACE,
            "sweep": SWEEP,
            "job": OPERATOR_JOB,
            "__rate_interval": "10s",
            "__interval": "1s",
            "__range": f"{round(self.end - self.start) + 1}s",
        }


@dataclass
class _Trial:
    name: str
    port: int
    params: dict[str, float]
    process: subprocess.Popen[bytes] | None = None
    ended_at: float | None = None
    log: list[str] = field(default_factory=list)


def _trial_env(trial: _Trial, workdir: Path) -> dict[str, str]:
    trainer = {
        "model": "tiny",
        "dataset": {"path": "synthetic:arithmetic"},
        "method": "lora",
        "maxSteps": MAX_STEPS,
        "evalEvery": 4,
    }
    output = workdir / trial.name
    output.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        conventions.ENV_SWEEP: SWEEP,
        conventions.ENV_TRIAL: trial.name,
        conventions.ENV_NAMESPACE: NAMESPACE,
        conventions.ENV_PARAMS: json.dumps(trial.params),
        conventions.ENV_METRICS_PORT: str(trial.port),
        conventions.ENV_METRICS_ADDR: "127.0.0.1",
        conventions.ENV_TRAINER_CONFIG: json.dumps(trainer),
        conventions.ENV_OUTPUT_DIR: str(output),
        conventions.ENV_TERMINATION_LOG: str(output / "termination-log"),
        conventions.ENV_SCRAPE_WAIT: "10",
    }


class _Reconciler:
    """What the operator's loop does to its metrics, driven by the trials' real state."""

    def __init__(self, metrics: OperatorMetrics, prometheus: Prometheus, trials: list[_Trial]):
        self.metrics = metrics
        self.prometheus = prometheus
        self.trials = trials
        self.pruned: set[str] = set()

    def step(self) -> bool:
        """One reconcile; False once every trial has ended."""
        with self.metrics.time_reconcile():
            steps = self._latest(metric_names.STEP)
            losses = self._latest(metric_names.EVAL_LOSS)
            for trial in self.trials:
                assert trial.process is not None
                if trial.name in self.pruned or trial.process.poll() is not None:
                    continue
                if trial is self.trials[-1] and steps.get(trial.name, 0) >= PRUNE_AT_STEP:
                    trial.process.terminate()
                    self.pruned.add(trial.name)
            counts = self._counts()
            best = min(losses.values()) if losses else None
            phase = "Running" if counts.running else "Succeeded"
            self.metrics.set_sweep(NAMESPACE, SWEEP, phase, counts, best)
        for trial in self.trials:
            assert trial.process is not None
            if trial.ended_at is None and trial.process.poll() is not None:
                trial.ended_at = time.monotonic()
                # No next trial to create in this tiny sweep: turnover is the time the
                # loop took to notice the end and settle the sweep's state.
                with self.metrics.suggestion.time():
                    self.metrics.turnover.observe(time.monotonic() - trial.ended_at)
        return counts.running > 0

    def _latest(self, metric: str) -> dict[str, float]:
        try:
            result = self.prometheus.query(f'{metric}{{sweep="{SWEEP}"}}', time.time())
        except Exception:
            self.metrics.error("prometheus_query_failed")
            return {}
        return {item["metric"]["trial"]: float(item["value"][1]) for item in result}

    def _counts(self) -> TrialCounts:
        running = succeeded = failed = pruned = 0
        for trial in self.trials:
            assert trial.process is not None
            code = trial.process.poll()
            if code is None:
                running += 1
            elif trial.name in self.pruned:
                pruned += 1
            elif code == conventions.EXIT_OK:
                succeeded += 1
            else:
                failed += 1
        return TrialCounts(
            total=len(self.trials),
            running=running,
            succeeded=succeeded,
            pruned=pruned,
            failed=failed,
        )


@contextmanager
def scraped_run(workdir: Path, timeout: float = 120.0) -> Iterator[ScrapedRun]:
    trials = [
        _Trial(conventions.trial_name(SWEEP, 0), free_port(), {"learning_rate": 0.05}),
        _Trial(conventions.trial_name(SWEEP, 1), free_port(), {"learning_rate": 0.01}),
    ]
    metrics = OperatorMetrics()
    operator_port = free_port()
    server, thread = start_http_server(operator_port, addr="127.0.0.1", registry=metrics.registry)
    jobs = [
        ScrapeJob(
            "kubetune-trials",
            tuple(f"127.0.0.1:{t.port}" for t in trials),
            honor_labels=True,
        ),
        ScrapeJob(
            OPERATOR_JOB,
            (f"127.0.0.1:{operator_port}",),
            labels=(("namespace", OPERATOR_NAMESPACE),),
            honor_labels=True,
        ),
    ]
    try:
        with prometheus_server(workdir, jobs) as prometheus:
            start = time.time()
            # An error the operator records when Prometheus cannot answer yet, so the
            # errors panel has a series (a healthy operator has none).
            metrics.error("prometheus_query_failed")
            for trial in trials:
                trial.process = subprocess.Popen(
                    TRIAL_COMMAND,
                    env=_trial_env(trial, workdir),
                    stdout=subprocess.DEVNULL,
                    stderr=(workdir / f"{trial.name}.log").open("wb"),
                )
            reconciler = _Reconciler(metrics, prometheus, trials)
            deadline = time.monotonic() + timeout
            while reconciler.step():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"trials still running after {timeout}s")
                time.sleep(0.5)
            # Let Prometheus see the final operator state and mark the trials stale.
            time.sleep(3)
            end = time.time()
            exit_codes = {t.name: t.process.wait() for t in trials if t.process is not None}
            yield ScrapedRun(prometheus, start, end, tuple(t.name for t in trials), exit_codes)
    finally:
        for trial in trials:
            if trial.process is not None and trial.process.poll() is None:
                trial.process.kill()
                trial.process.wait()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
