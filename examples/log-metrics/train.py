"""A training script that knows nothing about kubetune: it prints `epoch=N loss=X` lines.

kubetune reads them from the trial's log (spec.metrics.logs), the way Katib's default
collector reads stdout. A noisy quadratic stands in for a real model.
"""

import argparse
import math
import random
import time

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--width", type=int, required=True)
parser.add_argument("--epochs", type=int, default=8)
args = parser.parse_args()

rng = random.Random(args.width)
loss = 2.0
for epoch in range(1, args.epochs + 1):
    time.sleep(0.2)
    # Too small a learning rate learns slowly; too large a one oscillates.
    step = args.lr * (1.0 - args.lr / 0.5)
    loss = max(0.05, loss * (1.0 - max(step, -0.5)) + 0.02 * rng.random() + 0.1 / args.width)
    accuracy = 1.0 - math.tanh(loss)
    print(f"epoch={epoch} loss={loss:.5f} accuracy={accuracy:.4f}", flush=True)
