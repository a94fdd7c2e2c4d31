"""Per-example attention over a flattened batch, and logits only at the targets: the same
numbers as separate examples and full logits, with no mask built."""

from typing import Any

import pytest
import torch

from kubetune_trainer import attention, synthetic, tiny
from kubetune_trainer.batching import (
    IGNORE_INDEX,
    Tokenized,
    balanced_rows,
    collate,
    flatten,
    model_inputs,
    targets_only,
    tokenize_pairs,
)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return tiny.build_tokenizer(synthetic.pretraining_corpus()[:2000], 200)


@pytest.fixture
def model(tokenizer: Any) -> Any:
    torch.manual_seed(0)
    return tiny.build_model(tokenizer)


def examples(tokenizer: Any) -> list[Tokenized]:
    """Several examples of the same length (they share one attention call) and some of
    lengths of their own, interleaved."""
    lines = synthetic.pretraining_corpus()[:30]
    items = tokenize_pairs(tokenizer, [("", line) for line in lines], 64, True)
    lengths = [len(item) for item in items]
    assert len(set(lengths)) < len(lengths) and len(set(lengths)) > 2
    return items


def test_flatten_lays_examples_end_to_end() -> None:
    a = Tokenized([5, 6, 7], [5, 6, 7])
    b = Tokenized([8, 9], [IGNORE_INDEX, 9])
    batch = flatten([a, b])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    # An example's first token is never predicted from the previous example.
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9]]
    assert batch["cu_seq_lens_q"].tolist() == [0, 3, 5]
    assert "cu_seq_lens_q" not in model_inputs(batch, CPU, per_example=False)
    assert model_inputs(batch, CPU, per_example=True)["cu_seq_lens_q"] is batch["cu_seq_lens_q"]


def test_per_example_attention_gives_the_logits_of_separate_examples(
    tokenizer: Any, model: Any
) -> None:
    items = examples(tokenizer)
    model.eval()
    with torch.no_grad():
        alone = [model(**collate([[item]], 0), use_cache=False).logits[0] for item in items]
        with attention.per_example(model) as on:
            assert on and model.config._attn_implementation == attention.NAME
            inputs = model_inputs(flatten(items), CPU, on)
            inputs.pop("labels")
            flat = model(**inputs, use_cache=False).logits[0]
    assert model.config._attn_implementation == "sdpa"  # restored for generation
    start = 0
    for item, expected in zip(items, alone, strict=True):
        torch.testing.assert_close(flat[start : start + len(item)], expected, atol=1e-5, rtol=1e-5)
        start += len(item)


def test_a_training_step_has_the_same_loss_and_gradients_as_masked_rows(
    tokenizer: Any, model: Any
) -> None:
    """The loss still means the mean over the step's target tokens, and the update is the
    one the masked rows layout gave."""
    items = examples(tokenizer)
    targets = torch.tensor(sum(item.trained_tokens for item in items))

    def step(batch: dict[str, torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        loss = model(**batch, num_items_in_batch=targets, use_cache=False).loss
        loss.backward()
        return float(loss.detach()), [
            p.grad.clone() for p in model.parameters() if p.grad is not None
        ]

    rows_loss, rows_grads = step(collate(balanced_rows(items, 64), tokenizer.pad_token_id))
    with attention.per_example(model) as on:
        flat_loss, flat_grads = step(model_inputs(flatten(items), CPU, on))
    assert flat_loss == pytest.approx(rows_loss, rel=1e-5)
    for flat, rows in zip(flat_grads, rows_grads, strict=True):
        torch.testing.assert_close(flat, rows, atol=1e-5, rtol=1e-4)


def test_no_mask_is_built_under_per_example_attention(
    tokenizer: Any, model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers' sdpa path would build a tokens x tokens mask for a flattened row."""
    from transformers import masking_utils

    built: list[int] = []
    original = masking_utils.sdpa_mask

    def counting(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return original(*args, **kwargs)

    monkeypatch.setitem(
        masking_utils.ALL_MASK_ATTENTION_FUNCTIONS._global_mapping, "sdpa", counting
    )
    batch = flatten(examples(tokenizer))
    with torch.no_grad():
        model(**model_inputs(batch, CPU, per_example=False), use_cache=False)
        assert built  # the plain sdpa path does build one
        built.clear()
        with attention.per_example(model) as on:
            model(**model_inputs(batch, CPU, on), use_cache=False)
    assert not built


def test_other_attention_setups_keep_their_own_implementation(model: Any) -> None:
    model.config.sliding_window = 16  # a mask more than causal: not for per-example attention
    with attention.per_example(model) as on:
        assert not on and model.config._attn_implementation == "sdpa"
    model.config.sliding_window = None
    model.config._attn_implementation = "eager"
    with attention.per_example(model) as on:
        assert not on and model.config._attn_implementation == "eager"


def test_per_example_attention_refuses_a_row_without_boundaries(model: Any) -> None:
    with attention.per_example(model), pytest.raises(ValueError, match="cu_seq_lens_q"):
        model(input_ids=torch.tensor([[5, 6, 7]]), use_cache=False)


def test_logits_only_at_targets_give_the_same_loss_and_gradients(
    tokenizer: Any, model: Any
) -> None:
    """Prompt tokens carry no loss, so they need no logits: the LM head sees only the
    answer positions, and the step's loss and update do not change."""
    pairs = [("Q: What is 1 plus 2?\nA:", " 3"), ("Q: Reverse the word abc.\nA:", " cba")]
    items = tokenize_pairs(tokenizer, pairs * 3, 64, train_on_prompt=False)
    targets = sum(item.trained_tokens for item in items)
    flat = flatten(items)
    projected: list[int] = []
    model.lm_head.register_forward_hook(lambda m, i, o: projected.append(o.shape[1]))

    def step(batch: dict[str, torch.Tensor]) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        with attention.per_example(model) as on:
            loss = model(
                **model_inputs(batch, CPU, on),
                num_items_in_batch=torch.tensor(targets),
                use_cache=False,
            ).loss
            loss.backward()
        return float(loss.detach()), [p.grad.clone() for p in model.parameters()]

    full_loss, full_grads = step(flat)
    kept_loss, kept_grads = step(targets_only(flat))
    assert projected == [flat["input_ids"].shape[1], targets]
    assert targets < flat["input_ids"].shape[1] / 2
    assert kept_loss == pytest.approx(full_loss, rel=1e-6)
    for kept, full in zip(kept_grads, full_grads, strict=True):
        torch.testing.assert_close(kept, full, atol=1e-6, rtol=1e-5)


def test_a_batch_without_targets_keeps_its_labels() -> None:
    batch = flatten([Tokenized([5, 6], [IGNORE_INDEX, IGNORE_INDEX])])
    assert targets_only(batch) is batch


def test_gradient_checkpointing_recomputes_with_per_example_attention(
    tokenizer: Any, model: Any
) -> None:
    """Checkpointed layers run their forward again during backward: still per example."""
    items = examples(tokenizer)
    model.train()

    def grads() -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        with attention.per_example(model) as on:
            model(**model_inputs(flatten(items), CPU, on), use_cache=False).loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    plain = grads()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    checkpointed = grads()
    for a, b in zip(checkpointed, plain, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
