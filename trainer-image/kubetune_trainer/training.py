"""The fine-tuning loop: padding-free batches, AdamW, a transformers scheduler, periodic eval.

A plain loop rather than transformers.Trainer: it stops between steps on SIGTERM,
updates the trial's metrics every step, and never pads to max_length
(bench/trainer_throughput.py measures the difference).
"""

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kubetune.spec.training_args import TrainingArguments
from kubetune_trainer.batching import Tokenized, collate, fill_rows, micro_batches, tokenize_pairs
from kubetune_trainer.config import RunConfig
from kubetune_trainer.data import Splits
from kubetune_trainer.errors import Stopped, TrainingFailed
from kubetune_trainer.evaluation import (
    Decoding,
    answer_budget,
    autocast,
    eval_loss,
    exact_match,
    generate_answers,
)
from kubetune_trainer.log import log
from kubetune_trainer.metrics import TrainerMetrics
from kubetune_trainer.modeling import LoadedModel, apply_lora
from kubetune_trainer.progress import Progress
from kubetune_trainer.stopping import StopFlag

# Consecutive steps above divergence_factor x the first loss before giving up.
_DIVERGENCE_PATIENCE = 3


@dataclass(frozen=True)
class Plan:
    """Steps and warmup, known once the data is tokenized."""

    max_steps: int
    warmup_steps: int


def plan_steps(run: RunConfig, items: list[Tokenized]) -> Plan:
    args = run.args
    if args.packing:
        rows = len(fill_rows(items, args.max_length))
        per_epoch = max(1, -(-rows // args.per_device_train_batch_size))
    else:
        per_epoch = max(1, -(-len(items) // args.per_device_train_batch_size))
    if args.num_train_epochs is not None:
        steps = max(
            1, math.ceil(args.num_train_epochs * per_epoch / args.gradient_accumulation_steps)
        )
    else:
        steps = run.max_steps
    if args.warmup_steps is not None:
        warmup = min(args.warmup_steps, steps)
    else:
        warmup = math.ceil((args.warmup_ratio or 0.0) * steps)
    return Plan(steps, warmup)


def tokenize_all(tokenizer: Any, examples: list[Any], args: TrainingArguments) -> list[Tokenized]:
    pairs = [(e.prompt, e.response) for e in examples]
    return tokenize_pairs(tokenizer, pairs, args.max_length, args.train_on_prompt)


def _endless(items: list[Tokenized], args: TrainingArguments) -> Iterator[list[list[Tokenized]]]:
    epoch = 0
    while True:
        yield from micro_batches(
            items,
            args.per_device_train_batch_size,
            args.max_length,
            args.packing,
            args.seed + epoch,
        )
        epoch += 1


def _optimizer(model: Any, args: TrainingArguments) -> torch.optim.Optimizer:
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for param in model.parameters():
        if param.requires_grad:
            # Norm weights and biases are 1-D; decaying them hurts and is conventionally skipped.
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=args.learning_rate,
        betas=(args.adam_beta1, args.adam_beta2),
        eps=args.adam_epsilon,
        fused=torch.cuda.is_available(),
    )


def _scheduler(optimizer: torch.optim.Optimizer, args: TrainingArguments, plan: Plan) -> Any:
    from transformers import get_scheduler

    specific: dict[str, Any] = {}
    if args.lr_scheduler_type == "cosine_with_min_lr":
        specific["min_lr_rate"] = 0.1
    if args.lr_scheduler_type == "warmup_stable_decay":
        specific["num_decay_steps"] = max(1, plan.max_steps // 10)
    return get_scheduler(
        args.lr_scheduler_type,
        optimizer,
        num_warmup_steps=plan.warmup_steps,
        num_training_steps=plan.max_steps,
        scheduler_specific_kwargs=specific or None,
    )


def check_loss(
    step: int, loss: float, grad_norm: float, first: float | None, high: int, factor: float
) -> int:
    """Raise TrainingFailed on NaN/inf or a sustained blow-up; returns the new high-step count."""
    if not math.isfinite(loss):
        raise TrainingFailed(f"train loss is {loss} at step {step}")
    if not math.isfinite(grad_norm):
        raise TrainingFailed(f"gradient norm is {grad_norm} at step {step}")
    if first is not None and loss > factor * first:
        high += 1
        if high >= _DIVERGENCE_PATIENCE:
            raise TrainingFailed(
                f"diverging: train loss {loss:.4g} > {factor:g} x the first step's {first:.4g} "
                f"for {high} steps (lower learning_rate?)"
            )
        return high
    return 0


class Run:
    """One training run over given splits, reporting to `metrics` and `progress`."""

    def __init__(
        self,
        run: RunConfig,
        loaded: LoadedModel,
        splits: Splits,
        metrics: TrainerMetrics,
        progress: Progress,
        stop: StopFlag,
        fold: tuple[int, int] = (0, 1),
    ) -> None:
        """`fold` = (index, count) under cross-validation: the live step metrics count
        on across folds, so a scraper never sees the step go backwards."""
        self.run = run
        self.args = run.args
        self.loaded = loaded
        self.splits = splits
        self.metrics = metrics
        self.progress = progress
        self.stop = stop
        tokenizer = loaded.tokenizer
        self.train_items = tokenize_all(tokenizer, splits.train, self.args)
        self.eval_items = tokenize_all(tokenizer, splits.eval, self.args)
        self.plan = plan_steps(run, self.train_items)
        self.step_offset = fold[0] * self.plan.max_steps
        self.total_steps = fold[1] * self.plan.max_steps
        self.pad_id: int = tokenizer.pad_token_id
        if run.trainer.method == "full":
            self.model = loaded.model
            self.model.requires_grad_(True)
        else:
            self.model = apply_lora(loaded, run.trainer.method, self.args)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.decoding = Decoding(max_new_tokens=answer_budget(splits.eval, tokenizer))

    def evaluate(self, step: int) -> dict[str, float]:
        started = time.monotonic()
        device, dtype = self.loaded.device, self.loaded.autocast_dtype
        values = {
            "eval_loss": eval_loss(
                self.model,
                self.eval_items,
                self.args.per_device_eval_batch_size,
                self.args.max_length,
                self.pad_id,
                device,
                dtype,
                self.stop,
            )
        }
        if self.splits.has_answers:
            sample = self.splits.eval[: self.args.eval_max_samples]
            with autocast(device, dtype):
                answers = generate_answers(
                    self.model,
                    self.loaded.tokenizer,
                    [e.prompt for e in sample],
                    self.decoding,
                    self.args.per_device_eval_batch_size,
                    device,
                    self.stop,
                )
            values["eval_accuracy"] = exact_match(answers, sample)
        if self.stop():
            raise Stopped()  # a half-finished eval would report a wrong value
        self.metrics.report(values)
        self.metrics.eval_step.set(self.step_offset + step)
        self.progress.record_eval(step, values)
        latest = self.progress.latest
        shown = " ".join(f"{k} {v:.4f}" for k, v in values.items())
        if step > 0:
            shown += (
                f" | train_loss {latest['train_loss']:.4f} lr {latest['learning_rate']:.3g}"
                f" {latest['tokens_per_second']:.0f} tokens/s"
            )
        log.info(
            f"step {step}/{self.plan.max_steps}: {shown} (eval {time.monotonic() - started:.1f}s)"
        )
        return values

    def train(self) -> None:
        """Train for plan.max_steps steps; raises Stopped or TrainingFailed."""
        args, device, dtype = self.args, self.loaded.device, self.loaded.autocast_dtype
        optimizer = _optimizer(self.model, args)
        scheduler = _scheduler(optimizer, args, self.plan)
        batches = _endless(self.train_items, args)
        self.metrics.max_steps.set(self.total_steps)
        log.info(
            f"training {self.plan.max_steps} steps on {len(self.train_items)} examples "
            f"(eval {len(self.eval_items)}), warmup {self.plan.warmup_steps}"
        )
        if args.eval_on_start:
            self.evaluate(0)
        self.model.train()
        first_loss: float | None = None
        high_steps = 0
        train_seconds = 0.0
        train_tokens = 0
        for step in range(1, self.plan.max_steps + 1):
            if self.stop():
                raise Stopped()
            started = time.monotonic()
            step_batches = [next(batches) for _ in range(args.gradient_accumulation_steps)]
            targets = sum(
                item.trained_tokens for rows in step_batches for row in rows for item in row
            )
            tokens = sum(len(item) for rows in step_batches for row in rows for item in row)
            n_items = torch.tensor(max(1, targets), device=device)
            loss_sum = 0.0
            for rows in step_batches:
                batch = {k: v.to(device) for k, v in collate(rows, self.pad_id).items()}
                with autocast(device, dtype):
                    # Loss summed over tokens / all target tokens of the step: gradient
                    # accumulation gives the same update as one big batch.
                    loss = self.model(**batch, num_items_in_batch=n_items, use_cache=False).loss
                loss.backward()
                loss_sum += float(loss.detach())
                if self.stop():
                    raise Stopped()
            max_norm = args.max_grad_norm if args.max_grad_norm > 0 else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.trainable, max_norm))
            high_steps = check_loss(
                step, loss_sum, grad_norm, first_loss, high_steps, args.divergence_factor
            )
            first_loss = loss_sum if first_loss is None else first_loss
            learning_rate = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            train_seconds += time.monotonic() - started
            train_tokens += tokens
            self.progress.step = step
            reported = {
                "train_loss": loss_sum,
                "learning_rate": learning_rate,
                "grad_norm": grad_norm,
                "tokens_per_second": train_tokens / max(train_seconds, 1e-9),
            }
            self.progress.record_train(**reported, train_tokens=float(train_tokens))
            self.metrics.report(reported)
            self.metrics.tokens.inc(tokens)
            self.metrics.step.set(self.step_offset + step)
            if device.type == "cuda":
                self.metrics.gpu_memory.set(torch.cuda.max_memory_allocated())
            if step % self.run.trainer.eval_every == 0 or step == self.plan.max_steps:
                self.evaluate(step)

    def save(self, output_dir: Path) -> Path:
        """The adapter (LoRA) or the whole model (full), with the tokenizer."""
        target = output_dir / ("model" if self.run.trainer.method == "full" else "adapter")
        self.model.save_pretrained(target)
        self.loaded.tokenizer.save_pretrained(target)
        self.progress.adapter_path = str(target)
        return target


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
