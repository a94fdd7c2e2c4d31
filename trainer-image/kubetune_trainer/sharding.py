"""trainer.args.fsdp: a full fine-tune sharded across the processes (torch FSDP2,
`fully_shard`), instead of DDP's whole copy per process.

Each decoder layer is its own FSDP unit (its parameters gathered just for its forward and
backward), the rest of the model one more. Gradients are averaged over ranks as with DDP,
so the training loop's loss scaling stays the same. Every rank takes part in whatever
needs the whole model: evaluation (each runs the same forwards; only rank 0 reports) and
gathering the full weights that rank 0 saves. Works with nccl and with gloo on CPU.

Checkpoints of a sharded run are gathered whole on rank 0 (torch.distributed.checkpoint's
full state dicts) and written by checkpoint.py like any other. A resumed run's rank 0 reads
the checkpoint and broadcasts it, each rank keeping its shard; the other ranks never read
its tensors, so a node holds one copy of the model, not one per rank. A full-weight gather
costs one copy of the model in rank 0's CPU memory, as the final save already does; a
per-rank sharded format (torch.distributed.checkpoint.save) would avoid that for models too
large for one host.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def layers(model: Any) -> list[torch.nn.Module]:
    """The model's repeated blocks (transformers names them in _no_split_modules)."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    found = [m for m in model.modules() if type(m).__name__ in names]
    if found:
        return found
    return [m for m in model.modules() if type(m).__name__.endswith(("DecoderLayer", "Block"))]


def shard(model: Any) -> Any:
    """Shard `model` in place across the process group; returns it (now an FSDP module)."""
    from torch.distributed.fsdp import fully_shard

    for block in layers(model):
        fully_shard(block)
    fully_shard(model)
    return model


def is_sharded(model: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


@contextlib.contextmanager
def no_sync(model: Any) -> Iterator[None]:
    """Accumulate gradients locally (no all-reduce/reduce-scatter) for this micro-batch."""
    if not is_sharded(model):
        with model.no_sync():
            yield
        return
    model.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        model.set_requires_gradient_sync(True)


def norm_value(norm: Any) -> float:
    """clip_grad_norm_'s total norm as a number (a DTensor for sharded parameters)."""
    full = getattr(norm, "full_tensor", None)
    return float(full() if full is not None else norm)


def full_state(model: Any) -> dict[str, Any]:
    """The whole model's weights on CPU, on rank 0 (empty elsewhere). A collective: every
    rank calls it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_model_state_dict(model, options=options)


def _full_options(gathering: bool) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    # strict=False on load: a checkpoint holds the trainable parameters only (no buffers,
    # and a tied weight once), as the unsharded checkpoints do.
    return StateDictOptions(
        full_state_dict=True,
        cpu_offload=gathering,
        strict=gathering,
        broadcast_from_rank0=not gathering,
    )


def training_state(
    model: Any, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A sharded run's checkpoint content, gathered whole on rank 0 (empty elsewhere): the
    trainable weights by name and the optimizer state keyed by parameter names (not by
    position, as optimizer.state_dict() is), so it loads into any number of shards. A
    collective: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    weights, optim = get_state_dict(model, optimizer, options=_full_options(gathering=True))
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    trainable = {n: t for n, t in weights.items() if n in names and isinstance(t, torch.Tensor)}
    return trainable, dict(optim)


def load_training_state(
    model: Any,
    optimizer: torch.optim.Optimizer,
    weights: dict[str, torch.Tensor],
    optim: dict[str, Any],
    is_main: bool,
) -> None:
    """Each rank takes its shard of a checkpoint (training_state's shape) that rank 0 read
    and broadcasts; the others' weights and optim are ignored. A collective."""
    from torch.distributed.checkpoint.state_dict import (
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    options = _full_options(gathering=False)
    # Two calls, not set_state_dict: given an empty model state dict (the other ranks'),
    # set_state_dict takes it for an optimizer-only load and skips the model's broadcast,
    # which rank 0 then waits on for ever.
    set_model_state_dict(model, dict[str, Any](weights) if is_main else {}, options=options)
    set_optimizer_state_dict(model, optimizer, optim if is_main else {}, options=options)
