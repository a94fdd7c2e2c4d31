"""A tiny sweep scraped by a real Prometheus, for running every dashboard and alert query.

Two trials run the real trainer (`python -m kubetune_trainer`: torch + transformers + peft,
LoRA on a micro Llama built here from the trainer's own tiny-model builders, untrained, so
no pre-training wait) and serve /metrics: one trains to the end, the other is stopped with
SIGTERM part way, the way the operator prunes. The operator's own metrics
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

import httpx
from prometheus_client import start_http_server

from kubetune import conventions, metric_names
from kubetune.operator.metrics import OperatorMetrics
from kubetune.spec.status import Phase, TrialCounts
from tests.chart.prometheus import Prometheus, PromQLError, ScrapeJob, prometheus_server
from tests.cluster.prometheus import free_port

NAMESPACE = "ml-team"
SWEEP = "demo"
# The chart's operator job for a release named "kubetune" in namespace "kubetune": a
# ServiceMonitor names the job after the Service (tests check the rendered name matches).
OPERATOR_JOB = "kubetune"
OPERATOR_NAMESPACE = "kubetune"
MAX_STEPS = 80
PRUNE_AT_STEP = 16
TRIAL_COMMAND = [sys.executable, "-m", "kubetune_trainer"]
# Small enough to train 40 steps in seconds on a shared CPU.
MICRO_ARCHITECTURE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
}


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
    started_at: float | None = None
    ended_at: float | None = None
    log: list[str] = field(default_factory=list)


def build_micro_model(target: Path) -> Path:
    """A randomly initialised micro Llama and its tokenizer, saved like any local model."""
    from kubetune_trainer import synthetic, tiny

    tokenizer = tiny.build_tokenizer(synthetic.pretraining_corpus(), tiny.PRETRAIN["vocab_size"])
    tiny.build_model(tokenizer, MICRO_ARCHITECTURE).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def _trial_env(trial: _Trial, workdir: Path, model: Path) -> dict[str, str]:
    trainer = {
        "model": str(model),
        "dataset": {
            "path": "synthetic:arithmetic",
            "trainSplit": "train[:512]",
            "evalSplit": "train[512:528]",
        },
        "method": "lora",
        "maxSteps": MAX_STEPS,
        "evalEvery": 4,
        "args": {"per_device_train_batch_size": 16},
    }
    output = workdir / trial.name
    output.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "KUBETUNE_CACHE_DIR": str(workdir / "cache"),
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
        # Two trials share two cores with Prometheus and the test.
        "OMP_NUM_THREADS": "1",
    }


class _Reconciler:
    """What the operator's loop does to its metrics, driven by the trials' real state."""

    def __init__(self, metrics: OperatorMetrics, prometheus: Prometheus, trials: list[_Trial]):
        self.metrics = metrics
        self.prometheus = prometheus
        self.trials = trials
        self.pruned: set[str] = set()
        self.best: float | None = None

    def step(self) -> bool:
        """One reconcile; False once every trial has ended."""
        with self.metrics.time_reconcile():
            steps = self._latest(metric_names.STEP)
            # An eval value counts only once the trial has evaluated (eval_step > 0).
            losses = self._latest(
                f"{metric_names.EVAL_LOSS} and on (trial) {metric_names.EVAL_STEP} > 0"
            )
            for trial in self.trials:
                assert trial.process is not None
                if trial.name in self.pruned or trial.process.poll() is not None:
                    continue
                if trial is self.trials[-1] and steps.get(trial.name, 0) >= PRUNE_AT_STEP:
                    trial.process.terminate()
                    self.pruned.add(trial.name)
                    # A second failed reconcile: see scraped_run for the first.
                    self.metrics.error("prometheus_query_failed")
            counts = self._counts()
            # Best so far over the whole history, as the operator keeps it in status.
            self.best = min(
                [*losses.values(), *([] if self.best is None else [self.best])], default=None
            )
            phase: Phase = "Running" if counts.running else "Succeeded"
            # One GPU per trial, counted once its attempt ends, as the operator counts it.
            gpu_hours = sum(
                (t.ended_at - t.started_at) / 3600
                for t in self.trials
                if t.ended_at is not None and t.started_at is not None
            )
            self.metrics.set_sweep(NAMESPACE, SWEEP, phase, counts, self.best, gpu_hours)
        for trial in self.trials:
            assert trial.process is not None
            if trial.ended_at is None and trial.process.poll() is not None:
                trial.ended_at = time.monotonic()
                # No next trial to create in this tiny sweep: turnover is the time the
                # loop took to notice the end and settle the sweep's state.
                with self.metrics.suggestion.time():
                    self.metrics.turnover.observe(time.monotonic() - trial.ended_at)
        return counts.running > 0

    def _latest(self, expr: str) -> dict[str, float]:
        try:
            result = self.prometheus.query(expr, time.time())
        except (PromQLError, httpx.HTTPError):
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


def _wait_for_first_scrape(prometheus: Prometheus, job: str, timeout: float = 30) -> None:
    """Prometheus applies new targets on a 5s tick: start trials once scraping has begun."""
    deadline = time.monotonic() + timeout
    while not prometheus.query(f'up{{job="{job}"}} == 1', time.time()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"prometheus did not scrape job {job} within {timeout}s")
        time.sleep(0.25)


@contextmanager
def scraped_run(workdir: Path, timeout: float = 150.0) -> Iterator[ScrapedRun]:
    trials = [
        _Trial(conventions.trial_name(SWEEP, 0), free_port(), {"learning_rate": 0.003}),
        _Trial(conventions.trial_name(SWEEP, 1), free_port(), {"learning_rate": 0.0003}),
    ]
    metrics = OperatorMetrics()
    operator_port = free_port()
    server, thread = start_http_server(operator_port, addr="127.0.0.1", registry=metrics.registry)
    jobs = [
        # As the chart's trial job leaves each trial pod's target: namespace, sweep, trial and
        # pod from the pod's metadata, and the trainer's own copies only as exported_*.
        ScrapeJob(
            "kubetune-trials",
            tuple(f"127.0.0.1:{t.port}" for t in trials),
            target_labels=tuple(
                (("namespace", NAMESPACE), ("sweep", SWEEP), ("trial", t.name), ("pod", t.name))
                for t in trials
            ),
            honor_labels=False,
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
            # Built while Prometheus applies its targets (a 5s tick).
            model = build_micro_model(workdir / "micro-llama")
            _wait_for_first_scrape(prometheus, OPERATOR_JOB)
            start = time.time()
            # Failed reconciles the operator counts, so the errors panel has data (a healthy
            # operator's counter has no children). The first error of a reason creates its
            # series at 1, which rate() cannot see as an increase: the second, at the
            # prune, shows.
            metrics.error("prometheus_query_failed")
            for trial in trials:
                trial.started_at = time.monotonic()
                trial.process = subprocess.Popen(
                    TRIAL_COMMAND,
                    env=_trial_env(trial, workdir, model),
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
