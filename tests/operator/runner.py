"""Run the kubetune operator against the test cluster: in-process (a thread with its own
event loop) or as a `python -m kubetune.operator` subprocess (for kill-and-restart tests)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import kopf

from kubetune import conventions
from kubetune.operator.config import OperatorConfig
from kubetune_trainer.config import default_cache_dir
from tests.cluster.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]


class InProcessOperator:
    """kopf.operator() in a daemon thread; standalone, all namespaces."""

    def __init__(self, kubeconfig: Path, config: OperatorConfig | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.config = config or OperatorConfig(metrics_port=None, idle_interval=5.0)
        self.stop_flag = threading.Event()
        self.ready_flag = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self, timeout: float = 30) -> InProcessOperator:
        import kubetune.operator.handlers  # noqa: F401  (registers the handlers)

        os.environ["KUBECONFIG"] = str(self.kubeconfig)
        self.thread = threading.Thread(target=self._run, name="kubetune-operator", daemon=True)
        self.thread.start()
        if not self.ready_flag.wait(timeout):
            raise TimeoutError(f"operator not ready in {timeout}s: {self.error!r}")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(
                kopf.operator(
                    standalone=True,
                    clusterwide=True,
                    stop_flag=self.stop_flag,
                    ready_flag=self.ready_flag,
                    memo=kopf.Memo(config=self.config),
                )
            )
        except BaseException as error:  # surfaced by stop()
            self.error = error
        finally:
            loop.close()

    def stop(self, timeout: float = 30) -> None:
        self.stop_flag.set()
        if self.thread is not None:
            self.thread.join(timeout)
            assert not self.thread.is_alive(), "operator thread did not stop"

    def __enter__(self) -> InProcessOperator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SubprocessOperator:
    """`python -m kubetune.operator` as a child process; kill() is SIGKILL (no cleanup)."""

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        extra_env: dict[str, str] | None = None,
        liveness_port: int = 0,
        metrics_port: int = 0,
        lease_duration: float = 3.0,
    ):
        self.env = {**os.environ, **env, **(extra_env or {})}
        self.env.setdefault(conventions.ENV_OPERATOR_NAMESPACE, "kube-system")
        self.log = log
        self.ports = (liveness_port, metrics_port)
        self.lease_duration = lease_duration
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SubprocessOperator:
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kubetune.operator",
                "--all-namespaces",
                # Short, so a killed leader's successor takes over within a test's patience.
                "--lease-duration",
                str(self.lease_duration),
                "--liveness-port",
                str(self.ports[0]),
                "--metrics-port",
                str(self.ports[1]),
            ],
            env=self.env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def sweep_manifest(
    name: str,
    namespace: str,
    *,
    env: dict[str, str] | None = None,
    max_trials: int = 4,
    parallelism: int = 2,
    extra_spec: dict[str, Any] | None = None,
    script: Path | None = None,
) -> dict[str, Any]:
    """A template sweep running tests/operator/trial_script.py: one float parameter x."""
    script = script or Path(__file__).with_name("trial_script.py")
    spec: dict[str, Any] = {
        "objective": {"metric": "eval_loss", "direction": "minimize"},
        "algorithm": {"name": "random", "seed": 3},
        "budget": {"maxTrials": max_trials, "parallelism": parallelism, "maxFailedTrials": 3},
        "parameters": [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}],
        "metrics": {"interval": "1s"},
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "trial",
                        "image": "python:3.11-slim",
                        "command": ["python", str(script)],
                        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                    }
                ]
            }
        },
    }
    spec.update(extra_spec or {})
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@contextmanager
def running_trainer_operator(crd: Cluster) -> Iterator[InProcessOperator]:
    """An operator whose trial pods run the real trainer on the machine's tiny model."""
    from kubetune_trainer import tiny

    cache = default_cache_dir(os.environ)
    tiny.ensure_tiny(cache)
    assert crd.kubelet is not None
    # Like a node-level model cache: trial pods reuse the locally built tiny model.
    crd.kubelet.extra_env[conventions.ENV_CACHE_DIR] = str(cache)
    config = OperatorConfig(metrics_port=None, idle_interval=2.0, default_image="trainer:test")
    with InProcessOperator(crd.kubeconfig, config) as running:
        yield running
