"""Run `python -m kubetune_trainer` as a subprocess the way the local runner does."""

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from kubetune import conventions
from kubetune.builders.contract import trainer_command

_PORT_LINE = re.compile(r"metrics on http://[^:]+:(\d+)/metrics")

Series = dict[str, list[tuple[dict[str, str], float]]]


def trial_env(
    tmp: Path, trainer: dict[str, Any], params: dict[str, Any], scrape_wait: float = 10.0
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            conventions.ENV_TRAINER_CONFIG: json.dumps(trainer),
            conventions.ENV_PARAMS: json.dumps(params),
            conventions.ENV_SWEEP: "demo",
            conventions.ENV_TRIAL: "demo-t0001",
            conventions.ENV_NAMESPACE: "default",
            conventions.ENV_METRICS_PORT: "0",
            conventions.ENV_METRICS_ADDR: "127.0.0.1",
            conventions.ENV_OUTPUT_DIR: str(tmp / "out"),
            conventions.ENV_TERMINATION_LOG: str(tmp / "termination-log"),
            conventions.ENV_SCRAPE_WAIT: str(scrape_wait),
            "OMP_NUM_THREADS": "1",
        }
    )
    return env


class TrialProcess:
    """A running trial: its stderr collected in the background, its metrics port found there."""

    def __init__(
        self, env: dict[str, str], argv: list[str] | None = None, processes: int = 1
    ) -> None:
        """processes > 1: under torchrun, as a trial with trainer.gpus N is launched."""
        command = trainer_command(processes, sys.executable)
        self.proc = subprocess.Popen(
            [*command, *(argv or [])],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.port: int | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = _PORT_LINE.search(line)
            if match:
                self.port = int(match.group(1))

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def scrape(self) -> Series | None:
        """The parsed /metrics, or None when the server is not (or no longer) up."""
        if self.port is None:
            return None
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/metrics", timeout=5
            ) as response:
                text = response.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        series: Series = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                series.setdefault(sample.name, []).append((sample.labels, sample.value))
        return series

    def wait_for(self, predicate: Any, timeout: float) -> Series:
        """Scrape until predicate(series) holds; fails with the log if the trial ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            series = self.scrape()
            if series is not None and predicate(series):
                return series
            if self.proc.poll() is not None:
                raise AssertionError(f"trial ended ({self.proc.returncode}):\n{self.stderr}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting on the trial's metrics:\n{self.stderr}")

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def value(series: Series, name: str) -> float:
    [(_, number)] = series[name]
    return number
