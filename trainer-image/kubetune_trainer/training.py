"""The fine-tuning loop: padding-free batches, AdamW, a transformers scheduler, periodic eval.

A plain loop rather than transformers.Trainer: it stops between steps on SIGTERM,
updates the trial's metrics every step, and never pads to max_length
(bench/trainer_throughput.py measures the difference).
"""

import contextlib
import inspect
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kubetune.spec.training_args import TrainingArguments
from kubetune.trial_result import BestValue
from kubetune_trainer import artifacts, attention, checkpoint, distributed, sharding
from kubetune_trainer.batching import (
    Tokenized,
    fill_rows,
    flatten,
    micro_batches,
    model_inputs,
    shard,
    targets_only,
    tokenize_pairs,
)
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
# On SIGTERM a checkpoint is written only if the last one took less: Kubernetes' default
# grace period is 30 s, and the result still has to be written after it.
_STOP_CHECKPOINT_BUDGET_SECONDS = 10.0


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


def _endless(
    items: list[Tokenized], args: TrainingArguments, skip: int = 0
) -> Iterator[list[list[Tokenized]]]:
    """Micro-batches epoch after epoch, from the `skip`-th on: the order depends on the
    seed and the position only, so a resumed run continues the same sequence."""
    epoch = 0
    while True:
        for batch in micro_batches(
            items,
            args.per_device_train_batch_size,
            args.max_length,
            args.packing,
            args.seed + epoch,
        ):
            if skip:
                skip -= 1
                continue
            yield batch
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


def _accepts_logits_to_keep(model: Any) -> bool:
    """Whether the causal LM can project only chosen positions (most transformers LMs)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


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
        if run.trainer.method == "full":
            self.model = loaded.model
            self.model.requires_grad_(True)
        else:
            self.model = apply_lora(loaded, run.trainer.method, self.args)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.logits_at_targets = _accepts_logits_to_keep(self.model)
        self.world = distributed.world_from_env()
        # Training steps go through DDP (it averages the gradients across ranks and
        # broadcasts rank 0's initial weights); evaluation, checkpoints and the saved
        # artifacts use the plain model, on rank 0 only.
        self.train_model: Any = self.model
        # trainer.args.fsdp: sharded instead (sharding.py); every rank then evaluates and
        # gathers the weights rank 0 saves.
        self.sharded = self.world.distributed and self.args.fsdp
        if self.sharded:
            self.train_model = sharding.shard(self.model)
            # Sharding replaced the parameters (DTensors): clip the new ones.
            self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        elif self.world.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device = loaded.device
            self.train_model = DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.decoding = Decoding(max_new_tokens=answer_budget(splits.eval, tokenizer))
        spec = run.trainer
        every = spec.eval_every if spec.checkpoint_every is None else spec.checkpoint_every
        # Not per fold: a cross-validation trial is short and restarts whole.
        self.checkpoint_every = every if fold[1] == 1 else 0
        self.position = checkpoint.TrainerState(
            step=0,
            fingerprint=checkpoint.fingerprint(
                run,
                self.plan.max_steps,
                self.plan.warmup_steps,
                len(self.train_items),
                sharded=self.sharded,
            ),
            micro_batches=0,
        )
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self._rng_at_step = checkpoint.rng_state()  # as the next step will find it
        self._checkpoint_step = 0
        self._checkpoint_seconds = 0.0

    def evaluate(self, step: int) -> dict[str, float]:
        device = self.loaded.device
        # Evaluation leaves the training RNG as it found it: the steps after an eval draw
        # the same dropout masks whether or not the run was resumed in between.
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return self._evaluate(step)

    def _eval_stop(self) -> bool:
        """The stop check inside an evaluation. Sharded, every rank runs the same forwards
        (collectives each): they must all stop at the same batch, or one would wait on the
        others' gathers while they write the checkpoint on stop."""
        if not self.sharded:
            return self.stop()
        return distributed.any_rank(self.stop(), self.world, self.loaded.device)

    def _evaluate(self, step: int) -> dict[str, float]:
        started = time.monotonic()
        device, dtype = self.loaded.device, self.loaded.autocast_dtype
        values = {
            "eval_loss": eval_loss(
                self.model,
                self.eval_items,
                self.args.per_device_eval_batch_size,
                self.args.max_length,
                device,
                dtype,
                self._eval_stop,
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
                    self._eval_stop,
                )
            values["eval_accuracy"] = exact_match(answers, sample)
        if self._eval_stop():
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
        optimizer = self.optimizer = _optimizer(self.model, args)
        scheduler = self.scheduler = _scheduler(optimizer, args, self.plan)
        self.metrics.max_steps.set(self.total_steps)
        start = self._resume() if self.checkpoint_every else 0
        distributed.same_step(start, self.world, self.loaded.device)
        position = self.position
        batches = _endless(self.train_items, args, skip=position.micro_batches)
        log.info(
            f"training {self.plan.max_steps} steps on {len(self.train_items)} examples "
            f"(eval {len(self.eval_items)}), warmup {self.plan.warmup_steps}"
            + (f", resumed from step {start}" if start else "")
        )
        world = self.world
        main = world.is_main or self.sharded  # who evaluates (rank 0 alone reports)
        if start == 0 and args.eval_on_start and main:
            self.evaluate(0)
        elif start and self._eval_due(start) and self._last_eval_step() < start and main:
            self.evaluate(start)  # it was stopped during this evaluation
        self.train_model.train()
        for step in range(start + 1, self.plan.max_steps + 1):
            # Every rank stops at the same step, or one would wait on the others' gradients.
            if distributed.any_rank(self.stop(), world, device):
                raise Stopped()
            distributed.injected_failure(world, step)
            started = time.monotonic()
            # Every rank draws the same global micro-batches and trains its own shard.
            step_batches = [next(batches) for _ in range(args.gradient_accumulation_steps)]
            targets = sum(
                item.trained_tokens for rows in step_batches for row in rows for item in row
            )
            tokens = sum(len(item) for rows in step_batches for row in rows for item in row)
            n_items = torch.tensor(max(1, targets), device=device)
            loss_sum = 0.0
            for index, global_rows in enumerate(step_batches):
                rows = shard(global_rows, args.packing, args.max_length, world.rank, world.size)
                last = index == len(step_batches) - 1
                # Gradients are all-reduced once per step, after its last micro-batch.
                syncing = (
                    contextlib.nullcontext()
                    if last or not world.distributed
                    else sharding.no_sync(self.train_model)
                )
                with syncing, attention.per_example(self.model) as per_example:
                    flat = flatten([item for row in rows for item in row])
                    if self.logits_at_targets:
                        flat = targets_only(flat)
                    batch = model_inputs(flat, device, per_example)
                    with autocast(device, dtype):
                        # Loss summed over tokens / all target tokens of the step (of every
                        # rank): gradient accumulation and DDP give the same update as one
                        # big batch. DDP averages over ranks, so the sum needs x world size.
                        loss = self.train_model(
                            **batch, num_items_in_batch=n_items, use_cache=False
                        ).loss
                    (loss * world.size if world.distributed else loss).backward()
                loss_sum += float(loss.detach())
                if not world.distributed and self.stop():
                    raise Stopped()
            loss_sum = distributed.total(loss_sum, world, device)
            max_norm = args.max_grad_norm if args.max_grad_norm > 0 else math.inf
            grad_norm = sharding.norm_value(
                torch.nn.utils.clip_grad_norm_(self.trainable, max_norm)
            )
            position.high_steps = check_loss(
                step,
                loss_sum,
                grad_norm,
                position.first_loss,
                position.high_steps,
                args.divergence_factor,
            )
            if position.first_loss is None:
                position.first_loss = loss_sum
            learning_rate = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            position.train_seconds += time.monotonic() - started
            position.train_tokens += tokens
            position.step = step
            position.micro_batches += args.gradient_accumulation_steps
            self._rng_at_step = checkpoint.rng_state()
            self.progress.step = step
            reported = {
                "train_loss": loss_sum,
                "learning_rate": learning_rate,
                "grad_norm": grad_norm,
                "tokens_per_second": position.train_tokens / max(position.train_seconds, 1e-9),
            }
            self.progress.record_train(**reported, train_tokens=float(position.train_tokens))
            self.metrics.report(reported)
            self.metrics.tokens.inc(tokens)
            self.metrics.step.set(self.step_offset + step)
            if device.type == "cuda":
                self.metrics.gpu_memory.set(torch.cuda.max_memory_allocated())
            if self._eval_due(step) and main:
                self.evaluate(step)
            if (
                (world.is_main or self.sharded)  # sharded: every rank writes its shards
                and self.checkpoint_every
                and step % self.checkpoint_every == 0
                and step < self.plan.max_steps  # the final step saves the adapter instead
            ):
                self.write_checkpoint()

    def _eval_due(self, step: int) -> bool:
        return step % self.run.trainer.eval_every == 0 or step == self.plan.max_steps

    def _last_eval_step(self) -> int:
        points = self.progress.history.get("eval_loss") or [(-1, 0.0)]
        return points[-1][0]

    def write_checkpoint(self) -> None:
        """A checkpoint of the last completed step; a failed write costs only the resume."""
        assert self.optimizer is not None
        position, progress = self.position, self.progress
        position.history = {k: list(v) for k, v in progress.history.items()}
        position.best = None if progress.best is None else progress.best.model_dump()
        position.latest = dict(progress.latest)
        if self.sharded:
            # Every rank writes its shards and learns whether and how fast the checkpoint
            # was written, so all take the same decision on SIGTERM (checkpoint_on_stop is
            # a collective for them too).
            seconds = checkpoint.write_sharded(
                self.run.output_dir,
                position,
                self.model,
                self.optimizer,
                self.scheduler.state_dict(),
                self._rng_at_step,
                self.world,
                self.loaded.device,
            )
        else:
            try:
                seconds = checkpoint.write(
                    self.run.output_dir,
                    position,
                    checkpoint.trainable_state(self.model),
                    self.optimizer.state_dict(),
                    self.scheduler.state_dict(),
                    self._rng_at_step,
                )
            except OSError as error:
                log.warning(f"cannot write a checkpoint in {self.run.output_dir}: {error}")
                seconds = math.inf
        if seconds == math.inf:
            return
        self._checkpoint_step = position.step
        self._checkpoint_seconds = seconds
        if self.world.is_main:
            log.info(f"checkpoint of step {position.step} written ({seconds:.1f}s)")

    def checkpoint_on_stop(self) -> None:
        """On SIGTERM: a checkpoint of the last completed step, when there is something new
        and the last write was quick enough to fit the grace period."""
        if (
            not self.checkpoint_every
            or self.optimizer is None
            or self.position.step <= self._checkpoint_step
        ):
            return
        if self._checkpoint_seconds > _STOP_CHECKPOINT_BUDGET_SECONDS:
            if not self.world.is_main:
                return
            log.info(
                f"no checkpoint on stop: the last one took {self._checkpoint_seconds:.0f}s; "
                f"a resume starts from step {self._checkpoint_step}"
            )
            return
        self.write_checkpoint()

    def _resume(self) -> int:
        """Restore the newest checkpoint of this run, if any; returns its step (0: none)."""
        assert self.optimizer is not None
        found = checkpoint.find(self.run.output_dir, self.position.fingerprint, self.model)
        if self.sharded:
            # Loading is a collective: every rank must have a checkpoint of the same step.
            distributed.same_step(
                0 if found is None else found.state.step, self.world, self.loaded.device
            )
        if found is None:
            return 0
        state = found.state
        if found.shards is not None:
            sharding.load_shards(self.model, self.optimizer, found.shards)
        else:
            with torch.no_grad():
                params = dict(self.model.named_parameters())
                for name, tensor in found.weights.items():
                    params[name].copy_(tensor)
            self.optimizer.load_state_dict(found.optimizer)
        self.scheduler.load_state_dict(found.scheduler)
        checkpoint.set_rng_state(found.rng)
        self._rng_at_step = found.rng
        self.position = state
        self._checkpoint_step = state.step
        progress = self.progress
        progress.step = state.step
        progress.history = {k: list(v) for k, v in state.history.items()}
        progress.best = None if state.best is None else BestValue.model_validate(state.best)
        progress.latest = dict(state.latest)
        progress.resumed_from = state.step
        self.metrics.step.set(self.step_offset + state.step)
        log.info(f"resuming from the checkpoint of step {state.step} in {found.path}")
        return state.step

    def save(self) -> Path | None:
        """final/: the adapter (LoRA) or the whole model (full), tokenizer and parameters;
        nothing with keepCheckpoints none."""
        if not artifacts.keeps_final(self.run):
            return None
        whole = sharding.full_state(self.model) if self.sharded else None
        if not self.world.is_main:
            return None
        target = artifacts.save_final(self.model, self.loaded.tokenizer, self.run, whole)
        self.progress.adapter_path = str(target)
        return target


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
