"""Record real fine-tuning curves: the tiny-model LoRA trainer over a sampled design.

Each row of the design is one run of ``python -m kubetune_trainer`` (the trial contract:
KUBETUNE_TRAINER_CONFIG and KUBETUNE_PARAMS in the environment) at a point of the space
below, with the eval loss every ``--eval-every`` steps. Points come from a seeded
generator indexed by row, so the design is the same in every process; the first
``REPLICATED`` fraction of configurations also runs with extra seeds.

Resumable and chunked: ``--chunk i/n`` runs rows with index % n == i; each finished run
is appended to the JSONL (one line, flushed) and rows already there are skipped, so
several processes (or machines, then concatenate) can build the table.

Each row records the tiny model it trained (``tiny``: the model cache key). A row counts
as done, and is read into the table, only for one model: a new tiny recipe starts a new
table in the same file rather than mixing curves of two base models.

    python -m bench.finetune_curves --configs 400 --chunk 0/8      # one eighth of the table
    python -m bench.finetune_curves --configs 8 --max-steps 40 --limit 8   # a small proof

The checked-in table (bench/data/finetune_curves.jsonl): 360 configurations, 40 steps, an
eval every 5, every configuration at 3 seeds (``--replicated 1``; 1080 runs), on tiny model
326aa58f53e1. Its first 432 rows (36 configurations replicated) and the 648 added later
were recorded by the trainer of that model's commits; a row re-run there reproduces its
curve bit for bit. Today's tiny model is another one, so rows recorded now would start a
new table (see ``tiny`` above).

bench/replay.TabularCurves plays searchers against the table (bench/search_peers.py).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.replay import Recorded, TabularCurves, random_point

from kubetune import conventions

DATA = Path(__file__).resolve().parent / "data" / "finetune_curves.jsonl"
DESIGN_SEED = 20261130
REPLICATED = 0.1  # share of configurations also run with EXTRA_SEEDS
EXTRA_SEEDS = (1, 2)

# The searched space, in spec form: the table's problem searches exactly this.
SPACE: list[dict[str, Any]] = [
    {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-2, "log": True},
    {"name": "lora_r", "type": "int", "min": 2, "max": 64, "log": True},
    {"name": "lora_alpha_ratio", "type": "float", "min": 0.5, "max": 4.0, "log": True},
    {"name": "lora_dropout", "type": "float", "min": 0.0, "max": 0.2},
    {"name": "warmup_ratio", "type": "float", "min": 0.0, "max": 0.2},
    {"name": "per_device_train_batch_size", "type": "categorical", "values": [4, 8, 16]},
    {"name": "weight_decay", "type": "float", "min": 0.0, "max": 0.1},
    {
        "name": "lr_scheduler_type",
        "type": "categorical",
        "values": ["linear", "cosine", "constant_with_warmup"],
    },
]


@dataclass(frozen=True)
class Row:
    key: str
    config: int
    seed: int
    params: dict[str, Any]


def sample(index: int) -> dict[str, Any]:
    """Design point ``index``: uniform per parameter (log-uniform where log)."""
    point = random_point(SPACE, np.random.default_rng([DESIGN_SEED, index]))
    for p in SPACE:
        value = point[p["name"]]
        if p["type"] == "int":
            point[p["name"]] = round(value)
        elif p["type"] != "categorical":
            point[p["name"]] = float(f"{value:.4g}")
    return point


def design(configs: int, replicated: float = REPLICATED) -> Iterator[Row]:
    """Every row: each configuration with seed 0, the first ``replicated`` share also with
    extras (rows keep their keys whatever the share, so raising it adds rows only)."""
    for index in range(configs):
        params = sample(index)
        seeds = (0, *EXTRA_SEEDS) if index < max(1, round(configs * replicated)) else (0,)
        for seed in seeds:
            yield Row(f"c{index:04d}-s{seed}", index, seed, params)


def trainer_config(max_steps: int, eval_every: int, seed: int) -> dict[str, Any]:
    return {
        "model": "tiny",
        "method": "lora",
        "dataset": {"path": "synthetic:arithmetic", "evalSplit": "test[:64]"},
        "maxSteps": max_steps,
        "evalEvery": eval_every,
        # Only eval_loss is recorded: one answer generated per eval keeps generation cheap.
        "args": {"eval_max_samples": 1, "num_threads": 1, "seed": seed},
    }


def tiny_model() -> str:
    """The key of the tiny model the trainer loads here (its cache folder's name)."""
    from kubetune_trainer import tiny

    return tiny.cache_key()


def run_one(row: Row, max_steps: int, eval_every: int, cache: Path | None) -> dict[str, Any]:
    """One trainer process; the row's JSONL record (curve, or the failure)."""
    with tempfile.TemporaryDirectory(prefix="ft-curve-") as tmp:
        env = dict(os.environ)
        env.update(
            {
                conventions.ENV_TRAINER_CONFIG: json.dumps(
                    trainer_config(max_steps, eval_every, row.seed)
                ),
                conventions.ENV_PARAMS: json.dumps(row.params),
                conventions.ENV_SWEEP: "curves",
                conventions.ENV_TRIAL: f"curves-{row.key}",
                conventions.ENV_NAMESPACE: "bench",
                conventions.ENV_METRICS_PORT: "0",
                conventions.ENV_METRICS_ADDR: "127.0.0.1",
                conventions.ENV_OUTPUT_DIR: str(Path(tmp) / "out"),
                conventions.ENV_TERMINATION_LOG: str(Path(tmp) / "termination-log"),
                conventions.ENV_SCRAPE_WAIT: "0",
                "OMP_NUM_THREADS": "1",
            }
        )
        if cache is not None:
            env[conventions.ENV_CACHE_DIR] = str(cache)
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "kubetune_trainer"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        wall = round(time.perf_counter() - started, 1)
        result_file = Path(tmp) / "out" / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
    curve = result.get("intermediate", {}).get("eval_loss", [])
    record: dict[str, Any] = {
        "key": row.key,
        "config": row.config,
        "seed": row.seed,
        "params": row.params,
        "max_steps": max_steps,
        "eval_every": eval_every,
        "tiny": tiny_model(),
        "status": result.get("status", "failed") if proc.returncode == 0 else "failed",
        "curve": [[int(s), float(v)] for s, v in curve],
        "wall_seconds": wall,
    }
    if record["status"] != "succeeded":
        record["reason"] = (result.get("reason") or proc.stderr[-300:]).strip()[:300]
    return record


def done_keys(path: Path, max_steps: int, eval_every: int, model: str) -> set[str]:
    """Rows already recorded at this run length on this model (another is another table)."""
    if not path.exists():
        return set()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    table = (max_steps, eval_every, model)
    return {r["key"] for r in rows if (r["max_steps"], r["eval_every"], r.get("tiny")) == table}


def load_problem(path: Path, name: str = "finetune") -> TabularCurves | None:
    """The recorded table as a replay problem (succeeded runs only), or None if empty.

    Runs of one table share max_steps and the tiny model: the model with the most rows is
    read, and of its rows those of the longest runs.
    """
    if not path.exists():
        return None
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["status"] == "succeeded" and r["curve"]]
    if not rows:
        return None
    models = Counter(r.get("tiny") for r in rows)
    model = max(models, key=lambda m: (models[m], str(m)))
    rows = [r for r in rows if r.get("tiny") == model]
    length = max(r["max_steps"] for r in rows)
    runs = [
        Recorded(r["key"], r["params"], [(int(s), float(v)) for s, v in r["curve"]])
        for r in rows
        if r["max_steps"] == length
    ]
    return TabularCurves(name, [dict(p) for p in SPACE], runs)


def parse_chunk(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("--chunk: expected i/n, e.g. 0/8") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError("--chunk: need 0 <= i < n")
    return index, count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--configs", type=int, default=400, help="design configurations")
    parser.add_argument("--chunk", type=parse_chunk, default=(0, 1), help="i/n: rows i mod n")
    parser.add_argument("--max-steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=10)
    parser.add_argument("--limit", type=int, help="stop after this many new runs")
    parser.add_argument(
        "--replicated",
        type=float,
        default=REPLICATED,
        help=f"share of configurations also run with seeds {EXTRA_SEEDS} (default {REPLICATED})",
    )
    parser.add_argument("--out", type=Path, default=DATA)
    parser.add_argument(
        "--cache", type=Path, help="tiny-model cache (default: the machine's, built once)"
    )
    args = parser.parse_args(argv)
    if args.configs < 1 or args.max_steps < 1 or not 1 <= args.eval_every <= args.max_steps:
        parser.error("--configs, --max-steps >= 1 and 1 <= --eval-every <= --max-steps")
    if not 0.0 <= args.replicated <= 1.0:
        parser.error("--replicated: a share, 0 to 1")
    index, count = args.chunk
    done = done_keys(args.out, args.max_steps, args.eval_every, tiny_model())
    todo = [r for i, r in enumerate(design(args.configs, args.replicated)) if i % count == index]
    todo = [r for r in todo if r.key not in done][: args.limit]
    print(f"finetune curves: {len(todo)} runs to do in chunk {index}/{count} ({len(done)} done)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for row in todo:
        record = run_one(row, args.max_steps, args.eval_every, args.cache)
        with args.out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        final = record["curve"][-1][1] if record["curve"] else None
        print(f"  {row.key} {record['status']} final {final} ({record['wall_seconds']}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
