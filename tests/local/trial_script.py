"""A fast stand-in trainer for template sweeps: serves kubetune_trial_* metrics, no torch.

loss(step) = (x - 0.3)**2 + 1 / (1 + step), times 10 for the trial named by --bad.
Flags: --steps N, --sleep S per step, --result (write result.json / termination log),
--fail-trial NAME (exit 1), --launch-log FILE (append the trial name at start),
--flat (the loss does not fall with steps, so pruning does not depend on scrape timing),
--extra (also serve Validation-accuracy = 1 - loss, kept in the result, and eval.f1 = 0.5,
served only: names with - and ., for spec.additionalMetrics),
--artifacts (with --result: write final/ holding a file that names the trial, report it
as adapterPath, as the trainer does).
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, start_http_server

from kubetune import conventions, metric_names
from kubetune.trial_result import TrialResult

# The series of the additional metrics Validation-accuracy and eval.f1.
EXTRA = (
    metric_names.trial_metric("Validation-accuracy"),
    metric_names.trial_metric("eval.f1"),
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sleep", type=float, default=0.1)
    parser.add_argument("--result", action="store_true")
    parser.add_argument("--bad", default="")
    parser.add_argument("--fail-trial", default="")
    parser.add_argument("--launch-log", default="")
    parser.add_argument("--x", type=float, default=None)
    parser.add_argument("--flat", action="store_true", help="loss does not fall with steps")
    parser.add_argument("--extra", action="store_true", help="serve two additional metrics")
    parser.add_argument("--artifacts", action="store_true", help="write final/ and report it")
    args = parser.parse_args()

    trial = os.environ[conventions.ENV_TRIAL]
    params = json.loads(os.environ[conventions.ENV_PARAMS])
    x = args.x if args.x is not None else float(params["x"])
    if args.launch_log:
        with open(args.launch_log, "a") as log:
            log.write(trial + "\n")
    if trial == args.fail_trial:
        print("deliberate failure", file=sys.stderr)
        return 1

    stopped = False

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, on_term)
    registry = CollectorRegistry()
    labels = {"sweep": os.environ[conventions.ENV_SWEEP], "trial": trial, "namespace": "local"}
    gauges = {
        name: Gauge(name, name, list(labels), registry=registry).labels(**labels)
        for name in (
            metric_names.EVAL_LOSS,
            metric_names.EVAL_STEP,
            metric_names.STEP,
            metric_names.TRIAL_DONE,
            *EXTRA,
        )
    }
    if args.extra:
        gauges[EXTRA[1]].set(0.5)
    start_http_server(
        int(os.environ[conventions.ENV_METRICS_PORT]),
        addr=os.environ[conventions.ENV_METRICS_ADDR],
        registry=registry,
    )
    scale = 10.0 if trial == args.bad else 1.0
    history: list[tuple[int, float]] = []
    step = 0
    while step < args.steps and not stopped:
        time.sleep(args.sleep)
        step += 1
        loss = scale * ((x - 0.3) ** 2 + (1.0 if args.flat else 1.0 / (1 + step)))
        history.append((step, loss))
        gauges[metric_names.EVAL_LOSS].set(loss)
        gauges[metric_names.EVAL_STEP].set(step)
        gauges[metric_names.STEP].set(step)
        if args.extra:
            gauges[EXTRA[0]].set(1 - loss)
    status = "stopped" if stopped else "succeeded"
    if args.result:
        result = TrialResult(
            status=status,
            metrics=(
                {"eval_loss": history[-1][1]}
                | ({"Validation-accuracy": 1 - history[-1][1]} if args.extra else {})
                if history and not stopped
                else {}
            ),
            intermediate={"eval_loss": history},
            steps=step,
        )
        out = Path(os.environ[conventions.ENV_OUTPUT_DIR])
        if args.artifacts and not stopped:
            final = out / "final"
            final.mkdir(exist_ok=True)
            (final / "adapter.txt").write_text(trial)
            result.adapter_path = str(final)
        (out / conventions.RESULT_FILE).write_text(result.to_message())
        Path(os.environ[conventions.ENV_TERMINATION_LOG]).write_text(result.to_message())
    if stopped:
        return conventions.EXIT_STOPPED
    gauges[metric_names.TRIAL_DONE].set(1)
    time.sleep(float(os.environ.get(conventions.ENV_SCRAPE_WAIT, "0")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
