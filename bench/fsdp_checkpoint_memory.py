"""Memory of writing and resuming a sharded (FSDP) trial's checkpoint, per rank, on CPU.

    python -m bench.fsdp_checkpoint_memory            # ~170M parameters, 2 ranks (minutes)
    python -m bench.fsdp_checkpoint_memory --quick    # a small model, for a smoke check

A Llama-shaped model (random weights, one AdamW step taken, so the optimizer state is
full) is checkpointed and then resumed, each in fresh torchrun runs of 2 ranks (gloo), by:

- `ours`: the trainer's own code: checkpoint.write_sharded (every rank writes its shards
  with torch.distributed.checkpoint; rank 0 adds the rest, records every file's size and
  publishes the folder atomically) and checkpoint.find + sharding.load_shards;
- `rank0-gather`: what the trainer did before: the whole state gathered on rank 0 and
  written as one file set (full state dicts); on resume rank 0 memory-maps it and
  broadcasts, each rank keeping its shard;
- `every-rank-reads`: the same files, resumed as torch's full-state-dict API does when each
  rank passes the whole checkpoint: every rank torch.loads it whole (no mmap) and keeps
  its shard;
- `dcp`: torch.distributed.checkpoint's own recipe (dcp.save / dcp.load of
  get_state_dict), the strongest choice for memory, which ours builds on: the ratio to
  it is the cost of what ours adds.

Each rank's peak RSS rise during the write and during the load only (VmHWM reset through
/proc/self/clear_refs just before each), and the sum over the ranks of a node. Every arm's
loaded weights are checked against the written model (a checksum of the gathered model), so
no arm wins by loading less. File pages of a memory-mapped checkpoint count in the RSS of
the rank that touches them, though the kernel may drop them under pressure; the figure is
not flattered by that.
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
ARMS = ("ours", "rank0-gather", "every-rank-reads", "dcp")
# The arm whose files each arm loads (every-rank-reads reads rank0-gather's).
WRITER = {
    "ours": "ours",
    "rank0-gather": "rank0-gather",
    "every-rank-reads": "rank0-gather",
    "dcp": "dcp",
}
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


def _gather(model: Any, optimizer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """rank0-gather's checkpoint content: the trainable weights and the optimizer state,
    gathered whole on rank 0 (empty elsewhere). A collective."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights, optim = get_state_dict(model, optimizer, options=options)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: t for n, t in weights.items() if n in names}, dict(optim)


def _broadcast_load(model: Any, optimizer: Any, found: Any, is_main: bool) -> None:
    """rank0-gather's resume: rank 0's copy is broadcast, each rank keeping its shard."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, strict=False, broadcast_from_rank0=True)
    set_model_state_dict(model, dict(found.weights) if is_main else {}, options=options)
    set_optimizer_state_dict(model, optimizer, found.optimizer if is_main else {}, options=options)


def _dcp_state(model: Any, optimizer: Any) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_state_dict

    shards, shard_optim = get_state_dict(model, optimizer)
    return {"model": shards, "optim": shard_optim}


def _measured(action: Any) -> dict[str, float]:
    """Runs action() and returns this rank's RSS before it, its peak during it, and its
    seconds."""
    import torch

    torch.distributed.barrier()
    _, before, _ = proc_stats(os.getpid())
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS: the action's own peak
    started = time.monotonic()
    action()
    seconds = time.monotonic() - started
    _, _, peak = proc_stats(os.getpid())
    return {"rise_mb": peak - before, "seconds": seconds}


def _write(arm: str, folder: Path, shape: dict[str, int]) -> dict[str, float]:
    import torch
    import torch.distributed.checkpoint as dcp

    from kubetune_trainer import checkpoint, distributed

    model, optimizer = _model(shape)
    _step(model, optimizer)
    state = checkpoint.TrainerState(step=1, fingerprint="bench", micro_batches=1)
    is_main = torch.distributed.get_rank() == 0

    def write() -> None:
        if arm == "ours":
            world = distributed.world_from_env()
            seconds = checkpoint.write_sharded(
                folder, state, model, optimizer, {}, {}, world, torch.device("cpu")
            )
            assert seconds < float("inf"), "the checkpoint was not written"
        elif arm == "rank0-gather":
            weights, optim = _gather(model, optimizer)
            if is_main:
                checkpoint.write(folder, state, weights, optim, {}, {})
        else:
            dcp.save(_dcp_state(model, optimizer), checkpoint_id=str(folder))

    figures = _measured(write)
    return {**figures, "sum": _checksum(model)}


def _load(arm: str, folder: Path, shape: dict[str, int]) -> dict[str, float]:
    import torch
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    from kubetune_trainer import checkpoint, sharding

    model, optimizer = _model(shape)
    _step(model, optimizer)  # the optimizer has state to load into, as in a resumed run
    is_main = torch.distributed.get_rank() == 0

    def load() -> None:
        if arm in ("ours", "rank0-gather"):
            found = checkpoint.find(folder, "bench", model)
            assert found is not None, "the checkpoint was not found"
            if arm == "ours":
                assert found.shards is not None, "not a per-rank checkpoint"
                sharding.load_shards(model, optimizer, found.shards)
            else:
                _broadcast_load(model, optimizer, found, is_main)
        elif arm == "every-rank-reads":
            path = folder / checkpoint.CHECKPOINT_DIR
            weights = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
            optim = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
            options = StateDictOptions(full_state_dict=True, strict=False)
            set_state_dict(
                model, optimizer, model_state_dict=weights, optim_state_dict=optim, options=options
            )
        else:
            state = _dcp_state(model, optimizer)
            dcp.load(state, checkpoint_id=str(folder))
            set_state_dict(
                model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
            )

    figures = _measured(load)
    return {**figures, "sum": _checksum(model)}


def _worker(args: argparse.Namespace) -> int:
    import torch

    from kubetune_trainer import distributed

    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo")
    shape = json.loads(args.shape)
    folder = Path(args.dir)
    action, arm = args.worker.split(":")
    files = folder / WRITER[arm]
    figures = _write(arm, files, shape) if action == "write" else _load(arm, files, shape)
    rank = torch.distributed.get_rank()
    (folder / f"{action}-{arm}.rank{rank}.json").write_text(json.dumps(figures))
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
        "bench.fsdp_checkpoint_memory",
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


def _ranks(folder: Path, name: str, expected: float) -> dict[str, Any]:
    """One torchrun's figures over its ranks; refuses a run that ended with other weights."""
    ranks = [json.loads((folder / f"{name}.rank{r}.json").read_text()) for r in range(RANKS)]
    sums = {r["sum"] for r in ranks}
    if sums != {expected}:
        raise SystemExit(f"{name}: the weights sum to {sums}, the written model to {expected}")
    return {
        "peak_mb_per_rank": [round(r["rise_mb"], 1) for r in ranks],
        "node_peak_mb": round(sum(r["rise_mb"] for r in ranks), 1),
        "seconds": round(max(r["seconds"] for r in ranks), 2),
    }


def run(quick: bool) -> dict[str, Any]:
    shape = QUICK_MODEL if quick else FULL_MODEL
    writers = sorted(set(WRITER.values()), key=ARMS.index)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for arm in writers:
            _torchrun(f"write:{arm}", folder, shape)
        # Every write run builds the same model (seeded) and takes the same step.
        expected = json.loads((folder / f"write-{writers[0]}.rank0.json").read_text())["sum"]
        arms: dict[str, Any] = {arm: {} for arm in ARMS}
        for arm in writers:
            arms[arm]["write"] = _ranks(folder, f"write-{arm}", expected)
        for arm in ARMS:
            _torchrun(f"load:{arm}", folder, shape)
            arms[arm]["load"] = _ranks(folder, f"load-{arm}", expected)
        sizes = {arm: round(_size_mb(folder / arm), 1) for arm in writers}

    def ratio(phase: str, other: str) -> float:
        return round(arms["ours"][phase]["node_peak_mb"] / arms[other][phase]["node_peak_mb"], 3)

    return {
        "quick": quick,
        "ranks": RANKS,
        "model": shape,
        "checkpoint_mb": sizes,
        "arms": arms,
        "ratios": {
            "write_node_peak_vs_rank0_gather": ratio("write", "rank0-gather"),
            "write_node_peak_vs_dcp": ratio("write", "dcp"),
            "load_node_peak_vs_rank0_gather": ratio("load", "rank0-gather"),
            "load_node_peak_vs_every_rank_reads": ratio("load", "every-rank-reads"),
            "load_node_peak_vs_dcp": ratio("load", "dcp"),
        },
    }


def _cells(row: dict[str, Any] | None) -> str:
    if row is None:
        return "(rank0-gather's files) | - | -"
    per_rank = ", ".join(f"{v:.0f}" for v in row["peak_mb_per_rank"])
    return f"{per_rank} | {row['node_peak_mb']:.0f} | {row['seconds']:.2f}"


def markdown(result: dict[str, Any]) -> str:
    sizes = ", ".join(f"{arm} {mb:.0f} MB" for arm, mb in result["checkpoint_mb"].items())
    ratios = result["ratios"]
    lines = [
        "# Checkpointing a sharded (FSDP) trial: memory per rank, writing and resuming",
        "",
        f"{result['ranks']} ranks (torchrun, gloo, CPU); model {result['model']} (Llama-shaped); "
        f"checkpoints (weights + AdamW state): {sizes}. Generated by "
        "`python -m bench.fsdp_checkpoint_memory`"
        + (" --quick" if result["quick"] else "")
        + ". Peak: each rank's RSS rise during the write, and during the load (VmHWM reset "
        "just before each); node: the sum over the ranks.",
        "",
        "| arm | write: peak rise per rank (MB) | write: node (MB) | write (s) "
        "| load: peak rise per rank (MB) | load: node (MB) | load (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, row in result["arms"].items():
        lines.append(f"| {arm} | {_cells(row.get('write'))} | {_cells(row['load'])} |")
    lines += [
        "",
        "Ours against the others, node peak: "
        f"write {ratios['write_node_peak_vs_rank0_gather']:.2g}x rank0-gather and "
        f"{ratios['write_node_peak_vs_dcp']:.2g}x dcp; "
        f"load {ratios['load_node_peak_vs_rank0_gather']:.2g}x rank0-gather, "
        f"{ratios['load_node_peak_vs_every_rank_reads']:.2g}x every-rank-reads and "
        f"{ratios['load_node_peak_vs_dcp']:.2g}x dcp.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small model (smoke check)")
    workers = [f"{action}:{arm}" for action in ("write", "load") for arm in ARMS]
    parser.add_argument("--worker", choices=workers, help=argparse.SUPPRESS)
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
        (RESULTS / "fsdp_checkpoint_memory.json").write_text(json.dumps(result, indent=1) + "\n")
        (RESULTS / "fsdp_checkpoint_memory.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
