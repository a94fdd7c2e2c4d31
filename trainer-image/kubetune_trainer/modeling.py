"""Loading the tokenizer and model, and wrapping it for LoRA, QLoRA or full fine-tuning."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kubetune import conventions
from kubetune.spec.training_args import TrainingArguments
from kubetune_trainer import tiny
from kubetune_trainer.errors import ConfigError
from kubetune_trainer.log import log


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    source: str  # the path or id from_pretrained read
    device: torch.device
    autocast_dtype: torch.dtype | None  # None: plain fp32


def pick_device() -> torch.device:
    """The GPU of this process's local rank under torchrun, cuda:0 alone, else the CPU."""
    from kubetune_trainer.distributed import device_for, world_from_env

    return device_for(world_from_env())


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        if precision in ("bf16", "fp16"):
            raise ConfigError(
                "trainer.args.precision", f"{precision} needs a GPU; use fp32 or auto"
            )
        return None
    if precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise ConfigError("trainer.args.precision", "this GPU has no bf16; use fp16 or auto")
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def resolve_source(model: str, cache_dir: Path, should_stop: Callable[[], bool]) -> str:
    """`tiny` becomes the cached pre-trained tiny model's folder (built on first use)."""
    if model != conventions.TINY_MODEL:
        return model
    # Nothing of the tiny model lives on the hub (cli also sets this before any import).
    os.environ["HF_HUB_OFFLINE"] = "1"
    return str(tiny.ensure_tiny(cache_dir, should_stop))


def load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ConfigError(
            "trainer.model", f"cannot load a tokenizer from {source!r}: {_first_line(error)}"
        ) from None
    if tokenizer.pad_token_id is None:
        # Batches are padding-free; pad only fills the tail of the last row.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_method(method: str) -> None:
    """Fail fast, before any model is built or downloaded, on a method this machine lacks."""
    if method != "qlora":
        return
    if not torch.cuda.is_available():
        raise ConfigError(
            "trainer.method",
            "qlora needs a CUDA GPU (bitsandbytes 4-bit); none is visible here, use method: lora",
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError(
            "trainer.method", "qlora needs the bitsandbytes package, not installed"
        ) from None


def _quantization_config() -> Any:
    from transformers import BitsAndBytesConfig

    check_method("qlora")
    compute = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )


def _architecture_overrides(args: TrainingArguments) -> dict[str, Any]:
    mapping = {
        "num_layers": "num_hidden_layers",
        "hidden_size": "hidden_size",
        "num_attention_heads": "num_attention_heads",
        "num_key_value_heads": "num_key_value_heads",
        "intermediate_size": "intermediate_size",
        "activation": "hidden_act",
    }
    overrides = {
        config_name: getattr(args, name)
        for name, config_name in mapping.items()
        if getattr(args, name) is not None
    }
    if "num_attention_heads" in overrides and "num_key_value_heads" not in overrides:
        overrides["num_key_value_heads"] = overrides["num_attention_heads"]
    return overrides


def _from_scratch(source: str, args: TrainingArguments) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(source)
    overrides = _architecture_overrides(args)
    for key, value in overrides.items():
        setattr(config, key, value)
    heads = config.num_attention_heads
    if config.hidden_size % heads:
        raise ConfigError(
            "trainer.args.hidden_size",
            f"must be a multiple of num_attention_heads ({heads}), got {config.hidden_size}",
        )
    if getattr(config, "head_dim", None) is not None and (
        "hidden_size" in overrides or "num_attention_heads" in overrides
    ):
        config.head_dim = config.hidden_size // heads
    return AutoModelForCausalLM.from_config(config)


def load_model(
    model_name: str,
    method: str,
    args: TrainingArguments,
    cache_dir: Path,
    should_stop: Callable[[], bool],
) -> LoadedModel:
    """The tokenizer and the model, on its device, not yet wrapped for LoRA."""
    from transformers import AutoModelForCausalLM

    device = pick_device()
    source = resolve_source(model_name, cache_dir, should_stop)
    tokenizer = load_tokenizer(source)
    kwargs: dict[str, Any] = {}
    if method == "qlora":
        kwargs["quantization_config"] = _quantization_config()
        kwargs["device_map"] = {"": device.index or 0}
    dtype = autocast_dtype(args.precision, device)
    if args.from_scratch:
        model = _from_scratch(source, args)
    else:
        try:
            model = AutoModelForCausalLM.from_pretrained(
                source,
                # LoRA keeps the frozen base in half precision; full fine-tuning keeps fp32
                # master weights and autocasts.
                dtype=dtype if (dtype is not None and method != "full") else torch.float32,
                **kwargs,
            )
        except (OSError, ValueError) as error:
            raise ConfigError(
                "trainer.model", f"cannot load {model_name!r}: {_first_line(error)}"
            ) from None
    if method != "qlora":
        model.to(device)
    model.config.use_cache = False
    if args.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return LoadedModel(model, tokenizer, source, device, dtype)


def linear_module_names(model: Any) -> set[str]:
    """Last name components of the model's linear layers, e.g. q_proj, down_proj."""
    found: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in (
            "Linear4bit",
            "Linear8bitLt",
        ):
            found.add(name.rsplit(".", 1)[-1])
    return found


def apply_lora(loaded: LoadedModel, method: str, args: TrainingArguments) -> Any:
    """Wrap the model in a peft LoRA adapter (after k-bit preparation for QLoRA)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = loaded.model
    targets = args.target_modules
    if isinstance(targets, list) or targets != "all-linear":
        wanted = [targets] if isinstance(targets, str) else targets
        available = linear_module_names(model) - {"lm_head"}
        missing = [name for name in wanted if name not in available]
        if missing:
            raise ConfigError(
                "trainer.args.target_modules",
                f"no linear module named {', '.join(missing)} in this model; "
                f"it has: {', '.join(sorted(available))}",
            )
    if method == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=args.gradient_checkpointing
        )
    alpha: Any = args.effective_lora_alpha  # peft types it int; a float scales the same
    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=int(alpha) if float(alpha).is_integer() else alpha,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
        bias="none",
    )
    model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info(
        f"LoRA r={args.lora_r} alpha={args.effective_lora_alpha:g}: "
        f"{trainable:,} of {total:,} parameters trainable"
    )
    return model


def load_for_generation(
    model_name: str, adapter: str | None, cache_dir: Path, should_stop: Callable[[], bool]
) -> LoadedModel:
    """A trained model, or a base model plus a saved LoRA adapter, ready for generate()."""
    from transformers import AutoModelForCausalLM

    device = pick_device()
    if adapter is not None and not Path(adapter).exists():
        raise ConfigError("trainer.adapter", f"no such directory: {adapter}")
    is_adapter = adapter is not None and (Path(adapter) / "adapter_config.json").exists()
    if adapter is not None and not is_adapter:
        source = adapter  # a full fine-tune saved with save_pretrained
    else:
        source = resolve_source(model_name, cache_dir, should_stop)
    tokenizer = load_tokenizer(
        adapter
        if adapter is not None and (Path(adapter) / "tokenizer_config.json").exists()
        else source
    )
    dtype = autocast_dtype("auto", device)
    model: Any
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or torch.float32)
    except (OSError, ValueError) as error:
        raise ConfigError(
            "trainer.model", f"cannot load {source!r}: {_first_line(error)}"
        ) from None
    if adapter is not None and is_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.to(device)
    model.eval()
    return LoadedModel(model, tokenizer, source, device, dtype)
