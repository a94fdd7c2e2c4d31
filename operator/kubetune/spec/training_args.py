"""The built-in trainer's argument schema: names, types, ranges, defaults and docs.

Part of the contract between kubetune and its trainer, so it lives here and the trainer
imports it: `kubetune validate` and the operator check a sweep's parameter names and
types against it without the trainer (or torch) installed.
"""

import difflib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SchedulerName = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "warmup_stable_decay",
]
Activation = Literal["silu", "gelu", "gelu_new", "relu", "tanh"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
BestMetric = Literal["eval_loss", "eval_accuracy"]

# Arguments that shape a model built from scratch; meaningless for a pretrained one.
ARCHITECTURE_ARGS = (
    "num_layers",
    "hidden_size",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "activation",
)
# Arguments that only the generate mode reads.
DECODING_ARGS = (
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
    "max_new_tokens",
    "do_sample",
    "num_samples",
)
LORA_ARGS = ("lora_r", "lora_alpha", "lora_alpha_ratio", "lora_dropout", "target_modules")


class TrainingArguments(BaseModel):
    """Everything a sweep may fix in `trainer.args` or search as a parameter."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # Optimisation.
    learning_rate: float = Field(default=2e-4, gt=0.0, le=1.0, description="Peak learning rate.")
    weight_decay: float = Field(default=0.0, ge=0, le=1.0, description="AdamW weight decay.")
    adam_beta1: float = Field(default=0.9, ge=0, lt=1.0)
    adam_beta2: float = Field(default=0.999, ge=0, lt=1.0)
    adam_epsilon: float = Field(default=1e-8, gt=0)
    max_grad_norm: float = Field(
        default=1.0, ge=0, description="Gradient clipping norm; 0 disables clipping."
    )
    lr_scheduler_type: SchedulerName = Field(
        default="linear", description="transformers scheduler."
    )
    warmup_steps: int | None = Field(
        default=None, ge=0, description="Warmup steps; exclusive with warmup_ratio."
    )
    warmup_ratio: float | None = Field(
        default=None, ge=0, le=1.0, description="Warmup as a fraction of max_steps."
    )
    per_device_train_batch_size: int = Field(default=8, ge=1, le=4096)
    per_device_eval_batch_size: int = Field(default=32, ge=1, le=4096)
    gradient_accumulation_steps: int = Field(default=1, ge=1, le=1024)
    max_steps: int | None = Field(
        default=None, ge=1, description="Optimizer steps; overrides the trainer's maxSteps."
    )
    num_train_epochs: float | None = Field(
        default=None, gt=0, description="Train for this many epochs instead of maxSteps."
    )
    max_length: int = Field(
        default=512, ge=8, le=131072, description="Truncate examples to this many tokens."
    )
    packing: bool = Field(
        default=False,
        description="Pack examples into rows of max_length tokens (never padded either way).",
    )
    train_on_prompt: bool = Field(
        default=False, description="Also train on prompt tokens, not only on the response."
    )
    seed: int = Field(default=42, ge=0)
    gradient_checkpointing: bool = False
    fsdp: bool = Field(
        default=False,
        description=(
            "Shard a full fine-tune across the trial's processes (torch FSDP2) instead of a "
            "whole copy per process (DDP); method full only. No periodic checkpoints yet: "
            "the final model is gathered and saved whole."
        ),
    )
    precision: Precision = Field(
        default="auto", description="auto: bf16 on a GPU that has it, else fp32."
    )
    num_threads: int | None = Field(
        default=None, ge=1, le=1024, description="torch CPU threads; default torch's choice."
    )

    # LoRA / QLoRA.
    lora_r: int = Field(default=16, ge=1, le=4096, description="LoRA rank.")
    lora_alpha: float | None = Field(
        default=None, gt=0, description="LoRA alpha; default lora_alpha_ratio * lora_r."
    )
    lora_alpha_ratio: float = Field(
        default=2.0, gt=0, le=1024, description="alpha / rank when lora_alpha is not set."
    )
    lora_dropout: float = Field(default=0.05, ge=0, lt=1.0)
    target_modules: str | list[str] = Field(
        default="all-linear", description="all-linear, or module names such as q_proj."
    )

    # Evaluation.
    eval_on_start: bool = Field(
        default=False, description="Also evaluate before the first step (a step-0 baseline)."
    )
    eval_max_samples: int = Field(
        default=128, ge=1, description="Eval examples scored for accuracy (generation is slow)."
    )
    best_metric: BestMetric = Field(
        default="eval_loss", description="Metric whose best value the result reports."
    )
    divergence_factor: float = Field(
        default=4.0, gt=1.0, description="Fail when train loss exceeds this times its start."
    )

    num_folds: int | None = Field(
        default=None,
        ge=2,
        le=20,
        description="k-fold cross-validation over the train split (eval split unused): "
        "the result reports the folds' mean eval values and their spread; no adapter is kept.",
    )

    # Architecture, for a model trained from scratch.
    from_scratch: bool = Field(
        default=False, description="Random init from the model's config; needs method full."
    )
    num_layers: int | None = Field(default=None, ge=1, le=256)
    hidden_size: int | None = Field(default=None, ge=8, le=65536)
    num_attention_heads: int | None = Field(default=None, ge=1, le=1024)
    num_key_value_heads: int | None = Field(default=None, ge=1, le=1024)
    intermediate_size: int | None = Field(default=None, ge=8, le=262144)
    activation: Activation | None = None

    # Decoding (generate mode).
    temperature: float = Field(default=0.0, ge=0, le=10.0, description="0 decodes greedily.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0, description="0 disables top-k filtering.")
    repetition_penalty: float = Field(default=1.0, gt=0, le=10.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    max_new_tokens: int | None = Field(
        default=None, ge=1, le=8192, description="Default: longest eval answer + 4."
    )
    num_samples: int = Field(
        default=1, ge=1, le=64, description="Samples per prompt; accuracy is their mean."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        # pydantic's lax mode reads true as 1; for a learning rate that is a typo, not a value.
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name)
                if field is None or not isinstance(value, bool):
                    continue
                if field.annotation is not bool:
                    raise ValueError(f"{name}: must not be a boolean, got {value!r}")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "TrainingArguments":
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            raise ValueError("warmup_steps: set warmup_steps or warmup_ratio, not both")
        if self.max_steps is not None and self.num_train_epochs is not None:
            raise ValueError("max_steps: set max_steps or num_train_epochs, not both")
        if isinstance(self.target_modules, list) and not self.target_modules:
            raise ValueError("target_modules: must name at least one module")
        heads = self.num_attention_heads
        if self.hidden_size is not None and heads is not None and self.hidden_size % heads:
            raise ValueError(
                f"hidden_size: must be a multiple of num_attention_heads "
                f"({self.num_attention_heads}), got {self.hidden_size}"
            )
        kv_heads = self.num_key_value_heads
        if kv_heads is not None and heads is not None and heads % kv_heads:
            raise ValueError(
                f"num_key_value_heads: must divide num_attention_heads ({heads}), got {kv_heads}"
            )
        if not self.from_scratch:
            for name in ARCHITECTURE_ARGS:
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: only applies with from_scratch: true")
        return self

    @property
    def effective_lora_alpha(self) -> float:
        return (
            self.lora_alpha if self.lora_alpha is not None else self.lora_alpha_ratio * self.lora_r
        )


FIELD_NAMES = frozenset(TrainingArguments.model_fields)


def _rule(error: Any) -> str:
    kind: str = error["type"]
    ctx = error.get("ctx") or {}
    given = error.get("input")
    if kind == "extra_forbidden":
        return "unknown trainer argument"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<="}
        bound = next(iter(ctx.values()), "")
        return f"must be {sign.get(kind, '<')} {bound}, got {given!r}"
    if kind.startswith("int_"):
        return f"must be an integer, got {given!r}"
    if kind.startswith("float_"):
        return f"must be a number, got {given!r}"
    if kind.startswith("bool_"):
        return f"must be true or false, got {given!r}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {given!r}"
    if kind.startswith(("string_", "list_")):
        return f"must be a string or a list of strings, got {given!r}"
    return str(error["msg"]).removeprefix("Value error, ")


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, each starting with the argument it is about."""
    problems: list[str] = []
    for item in error.errors():
        loc = item["loc"]
        name = str(loc[0]) if loc else ""
        rule = _rule(item)
        if item["type"] == "extra_forbidden":
            close = difflib.get_close_matches(name, FIELD_NAMES, n=1)
            rule += f" (did you mean {close[0]}?)" if close else ""
        if not name:
            problems.append(rule)  # a cross-field rule already names its field
        elif not any(p.startswith(f"{name}: ") for p in problems):
            # A union type reports once per member; one line per field reads better.
            problems.append(f"{name}: {rule}")
    return problems


def parse_args(values: dict[str, Any]) -> TrainingArguments:
    """Validated arguments; raises ValidationError (see describe_errors)."""
    return TrainingArguments.model_validate(values)


def validate_args(values: dict[str, Any]) -> list[str]:
    """Problems with a set of trainer arguments, each naming the field; empty if valid."""
    try:
        parse_args(values)
    except ValidationError as error:
        return describe_errors(error)
    return []


def argument_docs() -> dict[str, str]:
    """Argument name to a one-line description with its default (for --explain)."""
    docs: dict[str, str] = {}
    for name, field in TrainingArguments.model_fields.items():
        text = field.description or ""
        docs[name] = f"{text} (default {field.default!r})".strip()
    return docs
