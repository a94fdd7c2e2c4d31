"""Padding-free batches: rows never exceed max_length and examples never see each other."""

import pytest
import torch

from kubetune_trainer import synthetic, tiny
from kubetune_trainer.batching import (
    IGNORE_INDEX,
    Tokenized,
    balanced_rows,
    collate,
    fill_rows,
    micro_batches,
    tokenize_pair,
    tokenize_pairs,
)


@pytest.fixture(scope="module")
def tokenizer() -> object:
    return tiny.build_tokenizer(synthetic.pretraining_corpus()[:2000], 200)


def item(n: int, start: int = 5) -> Tokenized:
    ids = list(range(start, start + n))
    return Tokenized(ids, ids)


def test_fill_rows_respects_capacity_and_keeps_every_example() -> None:
    items = [item(n) for n in (9, 3, 7, 2, 5, 1)]
    rows = fill_rows(items, 10)
    assert all(sum(len(i) for i in row) <= 10 for row in rows)
    assert sorted(len(i) for row in rows for i in row) == [1, 2, 3, 5, 7, 9]
    assert len(rows) == 3  # 27 tokens in rows of 10: no wasted row


def test_balanced_rows_pad_less_than_first_fit() -> None:
    items = [item(n) for n in (100, 100, 100, 100, 100, 100, 100, 100)]
    first_fit = fill_rows(items, 512)  # 5 + 3 examples: the batch pads 3 x 100 = 200 tokens
    balanced = balanced_rows(items, 512)  # 4 + 4: nothing padded
    assert [len(r) for r in first_fit] == [5, 3]
    assert [len(r) for r in balanced] == [4, 4]
    assert collate(balanced, 0)["input_ids"].shape == (2, 400)
    odd = [item(n) for n in (9, 3, 7, 2, 5, 1)]
    rows = balanced_rows(odd, 10)
    assert all(sum(len(i) for i in row) <= 10 for row in rows)
    assert sorted(len(i) for row in rows for i in row) == [1, 2, 3, 5, 7, 9]


def test_collate_restarts_positions_and_masks_boundaries() -> None:
    batch = collate([[item(3), item(2, start=50)], [item(4)]], pad_id=0)
    assert batch["input_ids"].shape == (2, 5)
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 0]]
    labels = batch["labels"].tolist()
    # First token of each example, and the padding, carry no loss.
    assert labels[0] == [IGNORE_INDEX, 6, 7, IGNORE_INDEX, 51]
    assert labels[1] == [IGNORE_INDEX, 6, 7, 8, IGNORE_INDEX]


def test_prompt_tokens_carry_no_loss_unless_asked(tokenizer: object) -> None:
    pair = tokenize_pair(tokenizer, "Q: What is 2 plus 3?\nA:", " 5", 64, train_on_prompt=False)
    assert pair.input_ids[0] == tokenizer.bos_token_id  # type: ignore[attr-defined]
    assert pair.input_ids[-1] == tokenizer.eos_token_id  # type: ignore[attr-defined]
    assert pair.trained_tokens == len([t for t in pair.labels if t != IGNORE_INDEX]) > 0
    assert pair.labels[0] == IGNORE_INDEX
    full = tokenize_pair(tokenizer, "Q: What is 2 plus 3?\nA:", " 5", 64, train_on_prompt=True)
    assert full.trained_tokens == len(full) - 1
    assert len(tokenize_pair(tokenizer, "Q: What is 2 plus 3?\nA:", " 5", 6, False)) == 6


def test_packed_rows_give_the_same_logits_as_separate_examples(tokenizer: object) -> None:
    torch.manual_seed(0)
    model = tiny.build_model(tokenizer).eval()
    a = tokenize_pair(tokenizer, "Q: What is 1 plus 2?\nA:", " 3", 64, False)
    b = tokenize_pair(tokenizer, "Q: Reverse the word abc.\nA:", " cba", 64, False)
    with torch.no_grad():
        alone_a = model(**collate([[a]], 0), use_cache=False).logits[0]
        alone_b = model(**collate([[b]], 0), use_cache=False).logits[0]
        packed = model(**collate([[a, b]], 0), use_cache=False).logits[0]
    torch.testing.assert_close(packed[: len(a)], alone_a, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(packed[len(a) :], alone_b, atol=1e-4, rtol=1e-4)


def test_micro_batches_cover_an_epoch() -> None:
    items = [item(n) for n in range(1, 21)]
    plain = list(micro_batches(items, 4, 64, packing=False, seed=1))
    assert len(plain) == 5
    assert sorted(len(i) for mb in plain for row in mb for i in row) == list(range(1, 21))
    packed = list(micro_batches(items, 2, 64, packing=True, seed=1))
    assert sum(len(i) for mb in packed for row in mb for i in row) == sum(range(1, 21))
    assert len(packed) < len(plain)


def test_trained_tokens_match_what_the_model_counts(tokenizer: object) -> None:
    # Gradient accumulation divides every micro-batch's summed loss by the step's
    # trained_tokens total; it must equal the targets the model's shifted loss sees.
    items = [
        tokenize_pair(tokenizer, "Q: What is 1 plus 2?\nA:", " 3", 64, False),
        tokenize_pair(tokenizer, "", "12 + 30 = 42", 64, True),
        tokenize_pair(tokenizer, "Q: Reverse the word abc.\nA:", " cba", 64, True),
    ]
    batch = collate(fill_rows(items, 40), pad_id=0)
    assert int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()) == sum(
        i.trained_tokens for i in items
    )


def test_batched_tokenization_matches_one_at_a_time(tokenizer: object) -> None:
    pairs = [("Q: What is 1 plus 2?\nA:", " 3"), ("", "7 + 5 = 12"), ("Q: Reverse abc.\nA:", "")]
    for train_on_prompt in (False, True):
        batched = tokenize_pairs(tokenizer, pairs, 12, train_on_prompt)
        assert batched == [tokenize_pair(tokenizer, p, r, 12, train_on_prompt) for p, r in pairs]
        assert all(item.input_ids[0] == tokenizer.bos_token_id for item in batched)  # type: ignore[attr-defined]
