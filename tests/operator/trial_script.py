"""A fast stand-in trial for operator tests: the trainer's metrics and result contract, no model.

Parameter `x` (from KUBETUNE_PARAMS) sets the loss curve: loss(step) = (x - 0.3)**2 + 1/step.
Environment knobs (set in the sweep's template): STEPS, STEP_SECONDS, FAIL_AT (exit 1 at
that step), NO_RESULT=1 (write no termination message), BAD_ABOVE (x above it) or BAD_TRIALS
(trial numbers, e.g. "3,5") give a flat loss of 10: a trial the pruner should stop;
BAD_SLOWDOWN multiplies a bad trial's step time,
RUN_LOG (a file to append the trial name to when it starts), EVAL_EVERY (evaluate, i.e.
report the loss, every that many steps, like a trainer's evalEvery), SIGKILL_AT (the
process SIGKILLs itself at that step).
"""

import json
import os
import signal
import sys
import time

from prometheus_client import CollectorRegistry, Gauge, start_http_server

params = json.loads(os.environ.get("KUBETUNE_PARAMS", "{}"))
x = float(params.get("x", 0.5))
steps = int(os.environ.get("STEPS", "10"))
pause = float(os.environ.get("STEP_SECONDS", "0.1"))
fail_at = int(os.environ.get("FAIL_AT", "-1"))
eval_every = int(os.environ.get("EVAL_EVERY", "1"))
signal_at = int(os.environ.get("SIGKILL_AT", "-1"))
labels = {
    "sweep": os.environ.get("KUBETUNE_SWEEP", ""),
    "trial": os.environ.get("KUBETUNE_TRIAL", ""),
    "namespace": os.environ.get("KUBETUNE_NAMESPACE", ""),
}
number = labels["trial"].rsplit("-t", 1)[-1]
bad_trials = {t.strip() for t in os.environ.get("BAD_TRIALS", "").split(",") if t.strip()}
bad = x > float(os.environ.get("BAD_ABOVE", "99")) or (
    number.isdigit() and str(int(number)) in bad_trials
)
if bad:
    pause *= float(os.environ.get("BAD_SLOWDOWN", "1"))
registry = CollectorRegistry()
if os.environ.get("RUN_LOG"):
    # One line per process start: tests count how often each trial really ran.
    with open(os.environ["RUN_LOG"], "a") as runs:
        runs.write(labels["trial"] + "\n")


def gauge(name: str) -> Gauge:
    return Gauge(name, name, list(labels), registry=registry).labels(**labels)


loss_g = gauge("kubetune_trial_eval_loss")
step_g = gauge("kubetune_trial_step")
eval_step_g = gauge("kubetune_trial_eval_step")
done_g = gauge("kubetune_trial_done")
start_http_server(
    int(os.environ.get("KUBETUNE_METRICS_PORT", "9400")),
    addr=os.environ.get("KUBETUNE_METRICS_ADDR", "127.0.0.1"),
    registry=registry,
)
history: list[list[float]] = []
message_path = os.environ.get("KUBETUNE_TERMINATION_LOG", "/dev/termination-log")


def write(status: str, reason: str | None = None) -> None:
    if os.environ.get("NO_RESULT") == "1":
        return
    last = history[-1][1] if history else None
    result = {
        "status": status,
        "reason": reason,
        "metrics": {"eval_loss": last} if last is not None else {},
        "intermediate": {"eval_loss": history},
        "steps": int(history[-1][0]) if history else 0,
    }
    with open(message_path, "w") as out:
        out.write(json.dumps(result))


def stop(*_: object) -> None:
    write("stopped", "SIGTERM")
    sys.exit(143)


signal.signal(signal.SIGTERM, stop)
for step in range(1, steps + 1):
    time.sleep(pause)
    if step == fail_at:
        write("failed", f"deliberate failure at step {step}")
        sys.exit(1)
    if step == signal_at:
        # A watchdog or liveness probe killing the trial: no disruption behind it.
        os.kill(os.getpid(), signal.SIGKILL)
    step_g.set(step)
    if step % eval_every:
        continue
    loss = 10.0 if bad else (x - 0.3) ** 2 + 1.0 / step
    history.append([step, loss])
    loss_g.set(loss)
    eval_step_g.set(step)
done_g.set(1)
write("succeeded")
time.sleep(float(os.environ.get("LINGER_SECONDS", "0")))
