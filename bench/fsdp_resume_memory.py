"""Memory of resuming a sharded (FSDP) trial from its checkpoint, per rank, on CPU.

    python -m bench.fsdp_resume_memory            # ~170M parameters, 2 ranks (a few minutes)
    python -m bench.fsdp_resume_memory --quick    # a small model, for a smoke check

One checkpoint of a Llama-shaped model (random weights, one AdamW step taken, so the
optimizer state is full), written by the trainer's own code (sharding.training_state,
checkpoint.write), then loaded by three arms in fresh torchrun runs of 2 ranks (gloo):

- `ours`: the trainer's resume (checkpoint.find memory-maps the files; rank 0 broadcasts,
  sharding.load_training_state);
- `every-rank-reads`: what the trainer did before, and what torch's full-state-dict API
  does if each rank passes the whole checkpoint: every rank torch.loads it whole
  (no mmap) and keeps its shard (set_state_dict, full_state_dict, no broadcast);
- `dcp`: torch.distributed.checkpoint, a per-rank sharded format (its own save, and each
  rank reads just its shard). The strongest choice for memory; it needs its own format.

Each rank's peak RSS during the load only (VmHWM reset through /proc/self/clear_refs just
before), and the sum over the ranks of a node. Every arm's loaded weights are checked
against the checkpoint (a checksum of the gathered model), so no arm wins by loading less.
File pages of a memory-mapped checkpoint count in the RSS of the rank that touches them,
though the kernel may drop them under pressure; the figure is not flattered by that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.process_stats import proc_stats

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
ARMS = ("ours", "every-rank-reads", "dcp")
FULL_MODEL = {
    "hidden_size": 1024,
    "intermediate_size": 2816,
    "num_hidden_layers": 8,
    "vocab_size": 32000,
}
# Small, and not dominated by its embeddings: a rank's transient buffers during the
# broadcast are about one whole tensor, which must stay small against the checkpoint.
QUICK_MODEL = {
    "hidden_size": 256,
    "intermediate_size": 704,
    "num_hidden_layers": 4,
    "vocab_size": 2048,
}
RANKS = 2


def _model(shape: dict[str, int]) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from kubetune_trainer import sharding

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=shape["vocab_size"],
        num_attention_heads=16 if shape["hidden_size"] >= 1024 else 4,
        num_key_value_heads=16 if shape["hidden_size"] >= 1024 else 4,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        hidden_size=shape["hidden_size"],
        intermediate_size=shape["intermediate_size"],
        num_hidden_layers=shape["num_hidden_layers"],
    )
    model = sharding.shard(LlamaForCausalLM(config))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    return model, optimizer


def _step(model: Any, optimizer: Any) -> None:
    import torch

    tokens = torch.randint(
        0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(1)
    )
    model(input_ids=tokens, labels=tokens).loss.backward()
    optimizer.step()
    optimizer.zero_grad()


def _checksum(model: Any) -> float:
    """The sum of every weight, on every rank (a collective)."""
    import torch

    from kubetune_trainer import sharding

    total = 0.0
    for tensor in sharding.full_state(model).values():
        total += float(tensor.double().sum())
    value = torch.tensor([total], dtype=torch.float64)
    torch.distributed.broadcast(value, 0)
    return float(value.item())


def _write(folder: Path, shape: dict[str, int]) -> None:
    import torch
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    from kubetune_trainer import checkpoint, sharding

    model, optimizer = _model(shape)
    _step(model, optimizer)
    weights, optim = sharding.training_state(model, optimizer)
    if torch.distributed.get_rank() == 0:
        state = checkpoint.TrainerState(step=1, fingerprint="bench", micro_batches=1)
        checkpoint.write(folder / "out", state, weights, optim, {}, {})
    shards, shard_optim = get_state_dict(model, optimizer)
    dcp.save({"model": shards, "optim": shard_optim}, checkpoint_id=str(folder / "dcp"))
    checksum = _checksum(model)
    if torch.distributed.get_rank() == 0:
        (folder / "checksum").write_text(repr(checksum))


def _load(arm: str, folder: Path, shape: dict[str, int]) -> dict[str, float]:
    import torch
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_state_dict,
        set_state_dict,
    )

    from kubetune_trainer import checkpoint, sharding

    model, optimizer = _model(shape)
    _step(model, optimizer)  # the optimizer has state to load into, as in a resumed run
    is_main = torch.distributed.get_rank() == 0
    torch.distributed.barrier()
    _, before, _ = proc_stats(os.getpid())
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS: the load's own peak
    started = time.monotonic()
    if arm == "ours":
        found = checkpoint.find(folder / "out", "bench", model)
        assert found is not None, "the checkpoint was not found"
        sharding.load_training_state(model, optimizer, found.weights, found.optimizer, is_main)
    elif arm == "every-rank-reads":
        path = folder / "out" / checkpoint.CHECKPOINT_DIR
        weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
        optim = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        options = StateDictOptions(full_state_dict=True, strict=False)
        set_state_dict(
            model, optimizer, model_state_dict=weights, optim_state_dict=optim, options=options
        )
    else:
        shards, shard_optim = get_state_dict(model, optimizer)
        dcp.load({"model": shards, "optim": shard_optim}, checkpoint_id=str(folder / "dcp"))
        set_state_dict(model, optimizer, model_state_dict=shards, optim_state_dict=shard_optim)
    seconds = time.monotonic() - started
    _, _, peak = proc_stats(os.getpid())
    return {"rss_before_mb": before, "peak_mb": peak, "load_s": seconds, "sum": _checksum(model)}


def _worker(args: argparse.Namespace) -> int:
    import torch

    from kubetune_trainer import distributed

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo")
    shape = json.loads(args.shape)
    folder = Path(args.dir)
    if args.worker == "write":
        _write(folder, shape)
    else:
        figures = _load(args.worker, folder, shape)
        rank = torch.distributed.get_rank()
        (folder / f"{args.worker}.rank{rank}.json").write_text(json.dumps(figures))
    # As the trainer ends its ranks: Python's finalization with gloo's threads about can
    # abort the process (distributed.leave says how).
    distributed.leave(0)


def _torchrun(worker: str, folder: Path, shape: dict[str, int]) -> None:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={RANKS}",
        "--standalone",
        "-m",
        "bench.fsdp_resume_memory",
        "--worker",
        worker,
        "--dir",
        str(folder),
        "--shape",
        json.dumps(shape),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "operator"), str(REPO / "trainer-image"), str(REPO), env.get("PYTHONPATH", "")]
    )
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{worker}: torchrun exited {done.returncode}\n{done.stderr[-4000:]}")


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def run(quick: bool) -> dict[str, Any]:
    shape = QUICK_MODEL if quick else FULL_MODEL
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _torchrun("write", folder, shape)
        expected = float((folder / "checksum").read_text())
        arms: dict[str, Any] = {}
        for arm in ARMS:
            _torchrun(arm, folder, shape)
            ranks = [json.loads((folder / f"{arm}.rank{r}.json").read_text()) for r in range(2)]
            sums = {r["sum"] for r in ranks}
            if sums != {expected}:
                raise SystemExit(f"{arm}: loaded weights sum to {sums}, the checkpoint {expected}")
            arms[arm] = {
                "peak_mb_per_rank": [round(r["peak_mb"] - r["rss_before_mb"], 1) for r in ranks],
                "node_peak_mb": round(sum(r["peak_mb"] - r["rss_before_mb"] for r in ranks), 1),
                "load_s": round(max(r["load_s"] for r in ranks), 2),
            }
        checkpoint_mb = _size_mb(folder / "out" / "checkpoint")
        dcp_mb = _size_mb(folder / "dcp")
    ours = arms["ours"]["node_peak_mb"]
    return {
        "quick": quick,
        "ranks": RANKS,
        "model": shape,
        "checkpoint_mb": round(checkpoint_mb, 1),
        "dcp_checkpoint_mb": round(dcp_mb, 1),
        "arms": arms,
        "node_peak_ratio_vs_every_rank_reads": round(
            ours / arms["every-rank-reads"]["node_peak_mb"], 3
        ),
        "node_peak_ratio_vs_dcp": round(ours / arms["dcp"]["node_peak_mb"], 3),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Resuming a sharded (FSDP) trial: memory per rank",
        "",
        f"{result['ranks']} ranks (torchrun, gloo, CPU); model {result['model']} (Llama-shaped); "
        f"checkpoint {result['checkpoint_mb']:.0f} MB (weights + AdamW state), "
        f"the dcp one {result['dcp_checkpoint_mb']:.0f} MB. Generated by "
        "`python -m bench.fsdp_resume_memory`"
        + (" --quick" if result["quick"] else "")
        + ". Peak: each rank's RSS rise during the load (VmHWM reset just before).",
        "",
        "| arm | peak rise per rank (MB) | node: sum over ranks (MB) | load (s) |",
        "|---|---|---|---|",
    ]
    for arm, row in result["arms"].items():
        per_rank = ", ".join(f"{v:.0f}" for v in row["peak_mb_per_rank"])
        lines.append(f"| {arm} | {per_rank} | {row['node_peak_mb']:.0f} | {row['load_s']:.2f} |")
    lines += [
        "",
        f"Ours / every-rank-reads (node): {result['node_peak_ratio_vs_every_rank_reads']:.2f}; "
        f"ours / dcp (node): {result['node_peak_ratio_vs_dcp']:.2f}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small model (smoke check)")
    parser.add_argument("--worker", choices=("write", *ARMS), help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args)
    result = run(args.quick)
    text = markdown(result)
    print(text)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "fsdp_resume_memory.json").write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS / "fsdp_resume_memory.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
