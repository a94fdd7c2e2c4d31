"""Stand-in for `python -m kubetune_trainer` while the real trainer CLI is being built.

It reads the same environment through the trainer's own config resolver and serves
the trainer's own TrialMetrics, but the loss curve is synthetic (no torch). SIGTERM
stops it like a pruned trial: it exits 143 with its last values left as they were.
"""

import math
import signal
import sys
import time
from types import FrameType

from kubetune import conventions
from kubetune_trainer.config import resolve
from kubetune_trainer.metrics import MetricsServer, TrialMetrics

STEP_SECONDS = 0.1
TOKENS_PER_STEP = 512


def main() -> int:
    config = resolve([])
    metrics = TrialMetrics(config.identity, config.params)
    server = MetricsServer(metrics, config.metrics_addr, config.metrics_port or 0).start()
    stopped = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    learning_rate = float(config.params.get("learning_rate", 1e-4))
    max_steps = config.max_steps
    metrics.max_steps.set(max_steps)
    metrics.set_gpu_memory(0.0)
    for step in range(1, max_steps + 1):
        if stopped:
            return conventions.EXIT_STOPPED
        time.sleep(STEP_SECONDS)
        decay = math.exp(-step * learning_rate * 20)
        metrics.train_loss.set(1.0 + 2.0 * decay)
        metrics.learning_rate.set(learning_rate)
        metrics.grad_norm.set(0.5 + decay)
        metrics.step.set(step)
        metrics.tokens.inc(TOKENS_PER_STEP)
        metrics.tokens_per_second.set(TOKENS_PER_STEP / STEP_SECONDS)
        if step % config.trainer.eval_every == 0 or step == max_steps:
            metrics.eval_loss.set(1.1 + 2.0 * decay)
            metrics.eval_accuracy.set(1.0 - decay)
            metrics.eval_step.set(step)
    metrics.mark_final()
    metrics.wait_for_final_scrape(config.scrape_wait_seconds)
    server.stop()
    return conventions.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
