"""2-process DistributedDataParallel full fine-tuning, for bench/gpu_check.py.

Started by `python -m torch.distributed.run --nproc-per-node 2`: NCCL on CUDA (one GPU
per rank), gloo on CPU in a dry run. Each rank trains on its own random token batches;
after the steps the ranks compare a checksum of their weights (DDP keeps them equal),
and rank 0 prints `RESULT {json}` with tokens/s summed over ranks.
"""

import argparse
import json
import os
import time
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from transformers import AutoModelForCausalLM

from kubetune_trainer import distributed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    opts = parser.parse_args()
    cuda = opts.device == "cuda"
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    model: Any = AutoModelForCausalLM.from_pretrained(opts.model_dir, dtype=torch.float32)
    model.to(device)
    model.config.use_cache = False
    ddp = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    optimizer = torch.optim.AdamW(ddp.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(rank)  # different data on each rank
    vocab = model.config.vocab_size
    seconds = 0.0
    loss = torch.tensor(0.0)
    for step in range(opts.steps):
        ids = torch.randint(0, vocab, (opts.batch_size, opts.max_length), generator=generator)
        ids = ids.to(device)
        started = time.monotonic()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = ddp(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if step > 0:  # the first step pays for NCCL setup and kernel selection
            seconds += time.monotonic() - started
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
    sums = [torch.zeros_like(checksum) for _ in range(world)]
    dist.all_gather(sums, checksum)
    timed_steps = max(1, opts.steps - 1)
    tokens = torch.tensor(float(timed_steps * opts.batch_size * opts.max_length), device=device)
    dist.all_reduce(tokens)
    if rank == 0:
        figures = {
            "world_size": world,
            "backend": dist.get_backend(),
            "steps": opts.steps,
            "final_loss": float(loss),
            "tokens_per_second": float(tokens) / max(seconds, 1e-9),
            "in_sync": all(torch.equal(s, sums[0]) for s in sums),
            "peak_memory_bytes": int(torch.cuda.max_memory_allocated()) if cuda else None,
        }
        print("RESULT " + json.dumps(figures), flush=True)
    # As the trainer's ranks end: finalization with gloo's threads about can abort a rank.
    distributed.leave(0)


if __name__ == "__main__":
    main()
