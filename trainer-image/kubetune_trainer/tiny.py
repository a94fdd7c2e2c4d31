"""The `tiny` model: a small Llama-style model pre-trained locally, cached once per machine.

Built from a config and a BPE tokenizer trained with `tokenizers`, pre-trained
briefly on the synthetic corpus, saved with save_pretrained and then loaded back
through the same from_pretrained path as any hub model. Several trial processes
may start at once: a file lock makes one of them build it while the others wait.
"""

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout

from kubetune_trainer import attention, synthetic
from kubetune_trainer.batching import Tokenized, flatten, model_inputs, tokenize_pairs
from kubetune_trainer.errors import Stopped
from kubetune_trainer.log import log

# Bump when the build code changes in a way the cache key cannot see.
TINY_VERSION = 3
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
TINY_ARCHITECTURE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 256,
    "hidden_act": "silu",
    "tie_word_embeddings": True,
}
# About 150k tokens, 20 s of one CPU thread: small batches learn the most per token.
# (The first recipe, 400 steps of 2048 tokens, took 2 min on two threads and learnt the
# facts better: loss on fact answers 0.57, about 0.95 now. Hyperparameters still matter
# as much: eval loss after 60 LoRA steps at lr 1e-4 / 2e-3 / 8e-3 / 3e-2 is 2.18 / 1.04
# / 1.01 / 1.39, against 1.96 / 1.01 / 0.97 / 1.77 then.)
PRETRAIN: dict[str, Any] = {
    "vocab_size": 320,
    "steps": 300,
    "batch_tokens": 512,
    "learning_rate": 6e-3,
    "warmup": 30,
    "seed": 0,
}
READY_MARKER = "kubetune-tiny.json"


def cache_key() -> str:
    """Changes whenever the architecture, the recipe or the corpus does."""
    digest = hashlib.sha256(
        json.dumps([TINY_VERSION, TINY_ARCHITECTURE, PRETRAIN], sort_keys=True).encode()
    )
    for line in synthetic.pretraining_corpus():
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()[:12]


def build_tokenizer(corpus: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer with one token per digit, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(
        [*corpus, synthetic.format_prompt("What is 1 plus 2?"), "Reverse the word abc."],
        trainer=trainer,
    )
    bos = tokenizer.token_to_id("<s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
    )


def build_model(tokenizer: Any, overrides: dict[str, Any] | None = None) -> Any:
    """A randomly initialised Llama-style causal LM."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **{**TINY_ARCHITECTURE, **(overrides or {})},
    )
    return LlamaForCausalLM(config)


_log = log.getChild("tiny").info


def pretrain(model: Any, tokenizer: Any, should_stop: Callable[[], bool]) -> float:
    """Next-token training on the synthetic corpus; returns the last loss."""
    from transformers import get_scheduler

    torch.manual_seed(PRETRAIN["seed"])
    corpus = synthetic.pretraining_corpus()
    items: list[Tokenized] = tokenize_pairs(
        tokenizer, [("", line) for line in corpus], 64, train_on_prompt=True
    )
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=PRETRAIN["learning_rate"], weight_decay=0.01
    )
    scheduler = get_scheduler(
        "cosine",
        optimizer,
        num_warmup_steps=PRETRAIN["warmup"],
        num_training_steps=PRETRAIN["steps"],
    )
    rng = random.Random(PRETRAIN["seed"])
    per_batch = max(1, PRETRAIN["batch_tokens"] // max(1, sum(map(len, items)) // len(items)))
    model.train()
    device = torch.device("cpu")
    loss_value = math.nan
    started = time.monotonic()
    for step in range(PRETRAIN["steps"]):
        if should_stop():
            raise Stopped("stopped while pre-training the tiny model")
        with attention.per_example(model) as per_example:
            batch = model_inputs(flatten(rng.sample(items, per_batch)), device, per_example)
            loss = model(**batch, use_cache=False).loss
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        if step % 100 == 0 or step == PRETRAIN["steps"] - 1:
            _log(
                f"pre-training step {step}: loss {loss_value:.3f} ({time.monotonic() - started:.0f}s)"
            )
    return loss_value


@contextlib.contextmanager
def _locked(lock: FileLock, should_stop: Callable[[], bool]) -> Iterator[None]:
    """Hold `lock`; while another process builds, keep answering SIGTERM promptly."""
    while True:
        try:
            lock.acquire(timeout=0.5)
            break
        except Timeout:
            if should_stop():
                message = "stopped while waiting for another trial to build the tiny model"
                raise Stopped(message) from None
    try:
        yield
    finally:
        lock.release()


def ensure_tiny(cache_dir: Path, should_stop: Callable[[], bool] = lambda: False) -> Path:
    """Path of the pre-trained tiny model, building it once per cache directory."""
    target = cache_dir / f"tiny-{cache_key()}"
    if (target / READY_MARKER).exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _locked(FileLock(str(target) + ".lock"), should_stop):
        if (target / READY_MARKER).exists():
            return target  # another trial built it while this one waited
        _log(f"building and pre-training the tiny model once, into {target}")
        started = time.monotonic()
        tokenizer = build_tokenizer(synthetic.pretraining_corpus(), PRETRAIN["vocab_size"])
        # The same initial weights on every machine, whatever ran before in this process.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(PRETRAIN["seed"])
            model = build_model(tokenizer)
        # One thread, whatever the trial asked for: with several, torch's threads wait on
        # each other at every operation, and when other processes hold the cores each
        # wait is long (on 2 busy cores a 2-thread build took 770 s instead of 115 s).
        # One thread keeps its pace however busy the machine is.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            loss = pretrain(model, tokenizer, should_stop)
        finally:
            torch.set_num_threads(threads)
        staging = Path(f"{target}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / READY_MARKER).write_text(
            json.dumps({"key": cache_key(), "loss": loss, "seconds": time.monotonic() - started})
        )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        _log(f"tiny model ready in {time.monotonic() - started:.0f}s (final loss {loss:.3f})")
    return target


if __name__ == "__main__":
    # `python -m kubetune_trainer.tiny`: build the cache ahead of time (setup scripts, CI).
    from kubetune_trainer.config import default_cache_dir

    print(ensure_tiny(default_cache_dir(os.environ)))
