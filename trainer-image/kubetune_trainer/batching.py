"""Tokenized examples to padding-free batches.

A micro-batch is a few rows of at most max_length tokens (micro_batches, shard: which
examples train together). To train, its examples are laid end to end in one row with
no padding at all (flatten), each with its own position ids starting at 0, and
attention.per_example keeps them apart. `collate` keeps the rows instead, topping each
up to the longest: transformers reads the position-id restarts as sequence boundaries
and masks attention block-diagonally (masking_utils find_packed_sequence_indices).
"""

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

IGNORE_INDEX = -100


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where no loss is taken

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        """Tokens that carry loss once collated (an example's first token never does)."""
        return sum(1 for label in self.labels[1:] if label != IGNORE_INDEX)


def _assemble(
    tokenizer: Any,
    prompt_ids: list[int],
    response_ids: list[int],
    max_length: int,
    train_on_prompt: bool,
) -> Tokenized:
    if not prompt_ids and tokenizer.bos_token_id is not None:
        prompt_ids = [tokenizer.bos_token_id]
    if tokenizer.eos_token_id is not None:
        response_ids = [*response_ids, tokenizer.eos_token_id]
    ids = (prompt_ids + response_ids)[:max_length]
    prompt_labels = list(prompt_ids) if train_on_prompt else [IGNORE_INDEX] * len(prompt_ids)
    labels = (prompt_labels + response_ids)[:max_length]
    return Tokenized(ids, labels)


def tokenize_pairs(
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    max_length: int,
    train_on_prompt: bool,
) -> list[Tokenized]:
    """Prompts with the tokenizer's special tokens, then the response and EOS.

    Two batched tokenizer calls for the whole list: a fast tokenizer encodes them
    in parallel, which matters for datasets of many thousand examples.
    """
    if not pairs:
        return []
    prompts = [prompt for prompt, _ in pairs if prompt]
    encoded = iter(tokenizer(prompts, add_special_tokens=True)["input_ids"] if prompts else [])
    responses = tokenizer([response for _, response in pairs], add_special_tokens=False)
    return [
        _assemble(
            tokenizer,
            list(next(encoded)) if prompt else [],
            list(response_ids),
            max_length,
            train_on_prompt,
        )
        for (prompt, _), response_ids in zip(pairs, responses["input_ids"], strict=True)
    ]


def tokenize_pair(
    tokenizer: Any, prompt: str, response: str, max_length: int, train_on_prompt: bool
) -> Tokenized:
    return tokenize_pairs(tokenizer, [(prompt, response)], max_length, train_on_prompt)[0]


def fill_rows(items: Sequence[Tokenized], capacity: int) -> list[list[Tokenized]]:
    """First-fit rows of at most `capacity` tokens, in order of length (longest first)."""
    rows: list[list[Tokenized]] = []
    sizes: list[int] = []
    for item in sorted(items, key=len, reverse=True):
        for index, size in enumerate(sizes):
            if size + len(item) <= capacity:
                rows[index].append(item)
                sizes[index] += len(item)
                break
        else:
            rows.append([item])
            sizes.append(len(item))
    return rows


def balanced_rows(items: Sequence[Tokenized], capacity: int) -> list[list[Tokenized]]:
    """As few rows as first-fit needs, with tokens spread evenly so little is padded.

    Longest example first into the emptiest row (LPT); the batch is padded to its
    longest row, so even rows waste the least. Falls back to first-fit when an
    even spread would overflow a row.
    """
    first_fit = fill_rows(items, capacity)
    rows: list[list[Tokenized]] = [[] for _ in first_fit]
    sizes = [0] * len(rows)
    for item in sorted(items, key=len, reverse=True):
        index = sizes.index(min(sizes))
        if sizes[index] + len(item) > capacity:
            return first_fit
        rows[index].append(item)
        sizes[index] += len(item)
    return rows


def collate(rows: Sequence[Sequence[Tokenized]], pad_id: int) -> dict[str, torch.Tensor]:
    """Rows of examples to input_ids / labels / position_ids tensors, no attention mask."""
    width = max(sum(len(item) for item in row) for row in rows)
    input_ids, labels, positions = [], [], []
    for row in rows:
        ids: list[int] = []
        lab: list[int] = []
        pos: list[int] = []
        for item in row:
            ids.extend(item.input_ids)
            # The model shifts labels left; the first token of an example must not be
            # predicted from the end of the previous one.
            lab.extend([IGNORE_INDEX, *item.labels[1:]])
            pos.extend(range(len(item)))
        pad = width - len(ids)
        ids.extend([pad_id] * pad)
        lab.extend([IGNORE_INDEX] * pad)
        pos.extend(range(pad))  # its own "sequence", so real tokens never attend to it
        input_ids.append(ids)
        labels.append(lab)
        positions.append(pos)
    return {
        "input_ids": torch.tensor(input_ids, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
        "position_ids": torch.tensor(positions, dtype=torch.long),
    }


def flatten(items: Sequence[Tokenized]) -> dict[str, torch.Tensor]:
    """Examples end to end in one row, no padding at all: input_ids / labels /
    position_ids of shape (1, tokens), and cu_seq_lens_q, the example boundaries
    (0, end of the first, ..., tokens) for attention.per_example."""
    input_ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    bounds = [0]
    for item in items:
        input_ids.extend(item.input_ids)
        # As in collate: an example's first token is not predicted from the one before.
        labels.extend([IGNORE_INDEX, *item.labels[1:]])
        positions.extend(range(len(item)))
        bounds.append(len(input_ids))
    return {
        "input_ids": torch.tensor([input_ids], dtype=torch.long),
        "labels": torch.tensor([labels], dtype=torch.long),
        "position_ids": torch.tensor([positions], dtype=torch.long),
        "cu_seq_lens_q": torch.tensor(bounds, dtype=torch.int32),
    }


def targets_only(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A flattened batch whose model call projects to the vocabulary only where a loss is
    taken (transformers' logits_to_keep): prompt tokens and example starts get no logits.
    The loss is the same sum over the same targets; the LM head, the log-softmax and
    their backward shrink to the answer tokens (a large part of the step for a big
    vocabulary). A batch with no target keeps its labels as they are."""
    labels = batch["labels"][0]
    positions = torch.nonzero(labels[1:] != IGNORE_INDEX).flatten()
    if positions.numel() == 0:
        return batch
    # Position p predicts token p + 1; shift_labels tells the loss they are aligned.
    targets = labels[positions + 1][None]
    return {**batch, "labels": targets, "shift_labels": targets, "logits_to_keep": positions}


def model_inputs(
    batch: dict[str, torch.Tensor], device: torch.device, per_example: bool
) -> dict[str, torch.Tensor]:
    """A flattened batch as model keyword arguments on `device`. The boundaries stay on
    the CPU (attention reads them as numbers) and go only to per-example attention:
    another implementation finds the examples from the position ids."""
    inputs = {k: v.to(device) for k, v in batch.items() if k != "cu_seq_lens_q"}
    if per_example:
        inputs["cu_seq_lens_q"] = batch["cu_seq_lens_q"]
    return inputs


def micro_batches(
    items: Sequence[Tokenized],
    batch_size: int,
    max_length: int,
    packing: bool,
    seed: int,
) -> Iterator[list[list[Tokenized]]]:
    """One epoch of micro-batches (lists of rows), shuffled by `seed`.

    Without packing a micro-batch holds `batch_size` examples; with packing it holds
    `batch_size` full rows of up to max_length tokens, so fewer, denser steps.
    """
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    shuffled = [items[i] for i in order]
    if not packing:
        for start in range(0, len(shuffled), batch_size):
            yield balanced_rows(shuffled[start : start + batch_size], max_length)
        return
    rows = fill_rows(shuffled, max_length)
    random.Random(seed + 1).shuffle(rows)
    for start in range(0, len(rows), batch_size):
        yield rows[start : start + batch_size]


def _blank(item: Tokenized) -> Tokenized:
    """An example that carries no loss: a rank with nothing left still joins the step."""
    return Tokenized(item.input_ids, [IGNORE_INDEX] * len(item))


def shard(
    rows: list[list[Tokenized]], packing: bool, max_length: int, rank: int, world: int
) -> list[list[Tokenized]]:
    """This rank's disjoint part of a global micro-batch: its share of the examples (rows,
    with packing), contiguous, sizes differing by at most one. A full batch divides evenly
    (the batch size is checked); an epoch's short last batch may leave a rank nothing, and
    it then runs one example with no loss, so its gradient all-reduce still happens."""
    if world == 1:
        return rows
    units: list[Any] = rows if packing else [item for row in rows for item in row]
    size, extra = divmod(len(units), world)
    start = rank * size + min(rank, extra)
    part = units[start : start + size + (1 if rank < extra else 0)]
    if not part:
        return [[_blank(rows[0][0])]]
    if packing:
        return part
    return balanced_rows(part, max_length)
