"""Causal attention within each example of a flattened batch, with no mask.

Training and eval batches lay their examples end to end in one row, with no padding
(batching.flatten). Under plain sdpa, transformers keeps the examples apart by finding
the position-id restarts and building a row x row boolean mask, and the CPU kernel then
computes every masked-out score as well. Here each example's slice of the row goes
through its own causal scaled_dot_product_attention call instead: the same result, no
mask is built, and attention costs the sum of the squared example lengths rather than
the square of the row (bench/trainer_throughput.py measures the difference).

Used only where that is exact: models on sdpa with full attention in every layer (a
sliding window would need its mask). Anything else keeps its own implementation, which
reads the position-id restarts itself.
"""

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import torch

NAME = "per_example_flattened"


def per_example_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    cu_seq_lens_q: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; `cu_seq_lens_q` holds the example
    boundaries of the row (0, end of the first, ..., row length)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if cu_seq_lens_q is None or query.shape[0] != 1:
        raise ValueError("per-example attention needs one flattened row and its cu_seq_lens_q")
    if attention_mask is not None or kwargs.get("sliding_window") is not None:
        raise ValueError("per-example attention cannot apply a mask or a sliding window")
    bounds = cu_seq_lens_q.tolist()
    # Examples of one length share a call: short examples (a pre-training corpus of
    # one-line facts) would otherwise cost a call each, per layer.
    starts_by_length: dict[int, list[int]] = {}
    for start, end in itertools.pairwise(bounds):
        starts_by_length.setdefault(end - start, []).append(start)
    parts, order = [], []
    for length, starts in starts_by_length.items():
        if len(starts) == 1:
            picked = [t[:, :, starts[0] : starts[0] + length] for t in (query, key, value)]
            order.append(torch.arange(starts[0], starts[0] + length))
        else:
            index = (torch.tensor(starts)[:, None] + torch.arange(length)).flatten()
            order.append(index)
            on_device = index.to(query.device)
            # (1, heads, n * length, dim) -> (n, heads, length, dim)
            picked = [
                t.index_select(2, on_device)
                .view(t.shape[1], len(starts), length, t.shape[3])
                .transpose(0, 1)
                for t in (query, key, value)
            ]
        query_part, key_part, value_part = picked
        out = sdpa_attention_forward(
            module,
            query_part,
            key_part,
            value_part,
            None,
            dropout=dropout,
            scaling=scaling,
            is_causal=True,
        )[0]  # (n, length, heads, dim)
        parts.append(out.reshape(1, -1, *out.shape[2:]))
    joined = torch.cat(parts, dim=1)
    if len(parts) == len(bounds) - 1:
        return joined, None  # one example per length: already in row order
    # Back to row order: position p of the row is at inverse[p] of `joined`.
    inverse = torch.empty(bounds[-1], dtype=torch.long)
    inverse[torch.cat(order)] = torch.arange(bounds[-1])
    return joined.index_select(1, inverse.to(query.device)), None  # (1, tokens, heads, dim)


def _register() -> None:
    from transformers import AttentionInterface

    # Registered as an attention function only, not as a mask function: transformers then
    # skips building a mask for it (masking_utils returns None for unknown names).
    AttentionInterface.register(NAME, per_example_attention)


def supported(config: Any) -> bool:
    """sdpa, and no sliding-window layers (their mask is more than causal)."""
    if getattr(config, "_attn_implementation", None) not in ("sdpa", NAME):
        return False
    if getattr(config, "sliding_window", None) is not None and getattr(
        config, "use_sliding_window", True
    ):
        return False
    layer_types = getattr(config, "layer_types", None) or ["full_attention"]
    return all(kind == "full_attention" for kind in layer_types)


@contextlib.contextmanager
def per_example(model: Any) -> Iterator[bool]:
    """Within: the model attends per example (yields True), when supported.

    Spans the backward pass too: gradient checkpointing runs the layers' forward again
    there. Outside it the model is back on its own implementation (generation needs it).
    """
    config = model.config
    if not supported(config) or config._attn_implementation == NAME:
        yield config._attn_implementation == NAME
        return
    _register()
    previous = config._attn_implementation
    config._attn_implementation = NAME
    try:
        yield True
    finally:
        config._attn_implementation = previous
