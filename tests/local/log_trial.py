"""A trial that reports only by printing: `epoch=N loss=X` lines (or JSON lines), no /metrics.

loss = (x - 0.3)**2 + 0.1 at every epoch (flat, so pruning does not depend on read timing),
times 10 for the trial named by --bad. Epochs count from 0, as a Python loop does.
Flags: --x, --epochs N, --sleep S per epoch, --bad NAME, --json, --noise (hostile lines too).
"""

import argparse
import json
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--sleep", type=float, default=0.1)
parser.add_argument("--bad", default="")
parser.add_argument("--json", action="store_true")
parser.add_argument("--noise", action="store_true")
args = parser.parse_args()

trial = os.environ.get("KUBETUNE_TRIAL", "")
loss = (args.x - 0.3) ** 2 + 0.1
if trial == args.bad:
    loss *= 10
print(f"starting {trial} x={args.x}", flush=True)
for epoch in range(args.epochs):
    time.sleep(args.sleep)
    if args.noise:
        print("loss=" + "9" * 70_000, flush=True)  # over the line cap: skipped whole
        print("loss=nan loss=inf", flush=True)
    if args.json:
        print(json.dumps({"epoch": epoch, "loss": loss, "note": "text"}), flush=True)
    else:
        print(f"epoch={epoch} loss={loss:.6f}", flush=True)
