"""Eval loss over the eval split, and exact-match accuracy of generated answers."""

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from kubetune_trainer import attention
from kubetune_trainer.batching import Tokenized, balanced_rows, flatten, model_inputs
from kubetune_trainer.synthetic import Example


@dataclass(frozen=True)
class Decoding:
    """Decoding settings; temperature 0 is greedy."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    max_new_tokens: int = 16
    num_samples: int = 1


def autocast(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def eval_batches(
    items: Sequence[Tokenized], batch_size: int, max_length: int
) -> Iterator[list[list[Tokenized]]]:
    for start in range(0, len(items), batch_size):
        yield balanced_rows(items[start : start + batch_size], max_length)


@torch.no_grad()
def eval_loss(
    model: Any,
    items: Sequence[Tokenized],
    batch_size: int,
    max_length: int,
    device: torch.device,
    dtype: torch.dtype | None,
    should_stop: Callable[[], bool] = lambda: False,
) -> float:
    """Mean cross-entropy per target token over the whole eval split."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for rows in eval_batches(items, batch_size, max_length):
            if should_stop():
                break
            flat = flatten([item for row in rows for item in row])
            with attention.per_example(model) as per_example, autocast(device, dtype):
                batch = model_inputs(flat, device, per_example)
                labels = batch.pop("labels")
                logits = model(**batch, use_cache=False).logits
            labels = labels[:, 1:]
            losses = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                labels.reshape(-1),
                ignore_index=-100,
                reduction="sum",
            )
            total += float(losses)
            count += int((labels != -100).sum())
    finally:
        model.train(was_training)
    return total / count if count else math.nan


class _OccurrencePenalty:
    """OpenAI-style frequency and presence penalties over the generated tokens."""

    def __init__(self, prompt_length: int, frequency: float, presence: float) -> None:
        self.prompt_length = prompt_length
        self.frequency = frequency
        self.presence = presence

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores)
        counts.scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


def _prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    ids: list[int] = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    return ids


@torch.no_grad()
def generate_answers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    decoding: Decoding,
    batch_size: int,
    device: torch.device,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[list[str]]:
    """decoding.num_samples answers per prompt (first line of the generated text)."""
    from transformers import LogitsProcessorList

    was_training = model.training
    model.eval()
    pad_id = tokenizer.pad_token_id
    answers: list[list[str]] = []
    sample = decoding.temperature > 0
    try:
        for start in range(0, len(prompts), batch_size):
            if should_stop():
                break
            encoded = [_prompt_ids(tokenizer, p) for p in prompts[start : start + batch_size]]
            width = max(map(len, encoded))
            # Left padding: every prompt ends where generation starts.
            input_ids = torch.tensor(
                [[pad_id] * (width - len(e)) + e for e in encoded], device=device
            )
            mask = torch.tensor(
                [[0] * (width - len(e)) + [1] * len(e) for e in encoded], device=device
            )
            processors = LogitsProcessorList()
            if decoding.frequency_penalty or decoding.presence_penalty:
                processors.append(
                    _OccurrencePenalty(width, decoding.frequency_penalty, decoding.presence_penalty)
                )
            options: dict[str, Any] = {
                "max_new_tokens": decoding.max_new_tokens,
                "do_sample": sample,
                "num_return_sequences": decoding.num_samples,
                "repetition_penalty": decoding.repetition_penalty,
                "pad_token_id": pad_id,
                "eos_token_id": tokenizer.eos_token_id,
                "logits_processor": processors,
            }
            if sample:
                options.update(
                    temperature=decoding.temperature, top_p=decoding.top_p, top_k=decoding.top_k
                )
            else:
                options.update(temperature=None, top_p=None, top_k=None)
            output = model.generate(input_ids=input_ids, attention_mask=mask, **options)
            texts = tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
            per_prompt = decoding.num_samples
            for index in range(len(encoded)):
                chunk = texts[index * per_prompt : (index + 1) * per_prompt]
                answers.append([t.strip().split("\n", 1)[0].strip() for t in chunk])
    finally:
        model.train(was_training)
    return answers


def exact_match(answers: Sequence[Sequence[str]], examples: Sequence[Example]) -> float:
    """Mean over prompts of the share of samples equal to the reference answer."""
    scores = [
        sum(a == example.response.strip() for a in samples) / len(samples)
        for samples, example in zip(answers, examples, strict=False)
        if samples
    ]
    return sum(scores) / len(scores) if scores else math.nan


def answer_budget(examples: Sequence[Example], tokenizer: Any) -> int:
    """New tokens enough for the longest reference answer plus EOS and slack."""
    longest = max(
        (len(tokenizer(e.response, add_special_tokens=False)["input_ids"]) for e in examples),
        default=8,
    )
    return longest + 4
