"""A custom training script tuned by kubetune through a pod template (no kubetune import).

The contract it follows, the same locally and in a pod:
- parameters arrive as command-line flags (${params.NAME} in the sweep) and as JSON in
  KUBETUNE_PARAMS;
- it serves Prometheus metrics on KUBETUNE_METRICS_PORT: kubetune_trial_eval_loss with
  kubetune_trial_eval_step (the step the loss was measured at), labelled sweep/trial/namespace;
- it stops cleanly on SIGTERM (kubetune prunes a losing trial that way);
- optionally it writes its final result as JSON to KUBETUNE_TERMINATION_LOG.

The model: a linear regression on synthetic data, fitted by SGD with momentum.
"""

import argparse
import json
import math
import os
import random
import signal
import sys
import time

from prometheus_client import CollectorRegistry, Gauge, start_http_server

LABELS = ("sweep", "trial", "namespace")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--eval-every", type=int, default=5)
    args = parser.parse_args()

    stop = False

    def on_sigterm(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_sigterm)
    labels = {
        "sweep": os.environ.get("KUBETUNE_SWEEP", ""),
        "trial": os.environ.get("KUBETUNE_TRIAL", ""),
        "namespace": os.environ.get("KUBETUNE_NAMESPACE", ""),
    }
    registry = CollectorRegistry()

    def gauge(name: str) -> Gauge:
        return Gauge(name, name, LABELS, registry=registry).labels(**labels)

    eval_loss, eval_step, step_gauge = (
        gauge("kubetune_trial_eval_loss"),
        gauge("kubetune_trial_eval_step"),
        gauge("kubetune_trial_step"),
    )
    start_http_server(
        int(os.environ.get("KUBETUNE_METRICS_PORT", "9400")),
        addr=os.environ.get("KUBETUNE_METRICS_ADDR", "0.0.0.0"),
        registry=registry,
    )

    rng = random.Random(0)
    true_w = [rng.uniform(-2, 2) for _ in range(8)]
    data = []
    for _ in range(256):
        x = [rng.gauss(0, 1) for _ in true_w]
        data.append((x, sum(w * v for w, v in zip(true_w, x, strict=True)) + rng.gauss(0, 0.1)))
    train, held_out = data[:200], data[200:]
    w = [0.0] * len(true_w)
    velocity = [0.0] * len(true_w)

    def loss(rows: list[tuple[list[float], float]]) -> float:
        total = sum((sum(a * b for a, b in zip(w, x, strict=True)) - y) ** 2 for x, y in rows)
        return min(total / len(rows), 1e6)

    history: list[tuple[int, float]] = []
    step = 0
    while step < args.steps and not stop:
        batch = rng.sample(train, 16)
        grad = [0.0] * len(w)
        for x, y in batch:
            error = sum(a * b for a, b in zip(w, x, strict=True)) - y
            for i, v in enumerate(x):
                grad[i] += 2 * error * v / len(batch)
        for i in range(len(w)):
            velocity[i] = args.momentum * velocity[i] - args.lr * grad[i]
            w[i] += velocity[i]
        step += 1
        step_gauge.set(step)
        if step % args.eval_every == 0 or step == args.steps:
            value = loss(held_out)
            if not math.isfinite(value):
                print(f"diverged at step {step}", file=sys.stderr)
                return 1
            history.append((step, value))
            eval_loss.set(value)
            eval_step.set(step)
        time.sleep(0.05)  # stands in for real work

    if stop:
        return 143
    final = history[-1][1]
    result = {
        "status": "succeeded",
        "metrics": {"eval_loss": final},
        "steps": step,
        "intermediate": {"eval_loss": history},
    }
    if os.environ.get("KUBETUNE_TERMINATION_LOG"):
        with open(os.environ["KUBETUNE_TERMINATION_LOG"], "w") as handle:
            json.dump(result, handle)
    print(f"final eval_loss {final:.4f} after {step} steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
