"""trainer.args.fsdp: a full fine-tune sharded across the processes (torch FSDP2,
`fully_shard`), instead of DDP's whole copy per process.

Each decoder layer is its own FSDP unit (its parameters gathered just for its forward and
backward), the rest of the model one more. Gradients are averaged over ranks as with DDP,
so the training loop's loss scaling stays the same. Every rank takes part in whatever
needs the whole model: evaluation (each runs the same forwards; only rank 0 reports) and
gathering the full weights that rank 0 saves. Works with nccl and with gloo on CPU.

Checkpoints of a sharded run are per rank (torch.distributed.checkpoint): each rank writes
and reads back only its own shards of the weights and the optimizer state, so no rank ever
holds the whole training state, however large the model; checkpoint.py places the shards
beside the rest of a checkpoint. The final model alone is gathered whole on rank 0, because
final/ is a plain model that from_pretrained loads (weights only, no optimizer state).
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
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


def _trainable_only(model: Any, weights: dict[str, Any]) -> dict[str, Any]:
    """The trainable parameters of a model state dict (no buffers, a tied weight once), as
    the unsharded checkpoints hold."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    return {n: t for n, t in weights.items() if n in names}


def _local_state(model: Any, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """This rank's shards: the trainable weights and the optimizer state keyed by parameter
    names (not by position, as optimizer.state_dict() is), both as DTensors, so a checkpoint
    loads into any number of ranks. A collective."""
    from torch.distributed.checkpoint.state_dict import get_state_dict

    weights, optim = get_state_dict(model, optimizer)
    return {"model": _trainable_only(model, weights), "optim": optim}


def save_shards(model: Any, optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Every rank writes its own shards of the training state into `folder`
    (torch.distributed.checkpoint: one file per rank and the metadata, each file fsynced).
    No rank holds more than its shard. A collective; a failure on any rank raises on all."""
    import torch.distributed.checkpoint as dcp

    dcp.save(_local_state(model, optimizer), checkpoint_id=folder)


def load_shards(model: Any, optimizer: torch.optim.Optimizer, folder: Path) -> None:
    """Every rank reads just its shards of a save_shards checkpoint, whatever the number of
    ranks that wrote it. A collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    # The template's tensors are this run's shards; dcp.load fills them in place.
    state = _local_state(model, optimizer)
    dcp.load(state, checkpoint_id=folder)
    set_state_dict(
        model,
        optimizer,
        model_state_dict=state["model"],
        optim_state_dict=state["optim"],
        options=StateDictOptions(strict=False),  # trainable parameters only, as saved
    )


def shard_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """The whole (unsharded) shape of each weight in a save_shards checkpoint, by name,
    from its metadata alone."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    entries = FileSystemReader(folder).read_metadata().state_dict_metadata
    prefix = "model."
    return {
        key[len(prefix) :]: tuple(entry.size)
        for key, entry in entries.items()
        if key.startswith(prefix) and isinstance(entry, TensorStorageMetadata)
    }
