"""The torch-free argument schema that `kubetune validate` uses."""

import subprocess
import sys

import pytest

from kubetune.spec.training_args import TrainingArguments, argument_docs, parse_args, validate_args


def test_defaults_are_valid_and_alpha_follows_rank() -> None:
    args = parse_args({})
    assert args.target_modules == "all-linear"
    assert args.effective_lora_alpha == 2 * args.lora_r
    assert parse_args({"lora_r": 8, "lora_alpha_ratio": 4}).effective_lora_alpha == 32
    assert parse_args({"lora_r": 8, "lora_alpha": 5}).effective_lora_alpha == 5


def test_search_relevant_arguments_accept_typical_values() -> None:
    values = {
        "learning_rate": 2e-4,
        "lora_r": 32,
        "lora_dropout": 0.05,
        "target_modules": ["q_proj", "v_proj"],
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 2,
        "warmup_ratio": 0.03,
        "lr_scheduler_type": "cosine",
        "weight_decay": 0.01,
        "max_length": 256,
        "packing": True,
        "seed": 7,
    }
    assert validate_args(values) == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"learning_rat": 1e-4},
            "learning_rat: unknown trainer argument (did you mean learning_rate?)",
        ),
        ({"learning_rate": "fast"}, "learning_rate: must be a number, got 'fast'"),
        ({"learning_rate": True}, "learning_rate: must not be a boolean, got True"),
        ({"learning_rate": 0}, "learning_rate: must be > 0.0, got 0"),
        ({"lora_r": 2.5}, "lora_r: must be an integer, got 2.5"),
        ({"lora_dropout": 1.0}, "lora_dropout: must be < 1.0, got 1.0"),
        ({"packing": "maybe"}, "packing: must be true or false, got 'maybe'"),
        ({"lr_scheduler_type": "exp"}, "lr_scheduler_type: must be one of"),
        ({"target_modules": []}, "target_modules: must name at least one module"),
        (
            {"warmup_steps": 10, "warmup_ratio": 0.1},
            "warmup_steps: set warmup_steps or warmup_ratio",
        ),
        ({"max_steps": 10, "num_train_epochs": 1}, "max_steps: set max_steps or num_train_epochs"),
        ({"num_layers": 2}, "num_layers: only applies with from_scratch: true"),
        (
            {"from_scratch": True, "hidden_size": 100, "num_attention_heads": 3},
            "hidden_size: must be a multiple of num_attention_heads (3), got 100",
        ),
        ({"top_p": 0}, "top_p: must be > 0.0, got 0"),
    ],
)
def test_bad_arguments_name_the_field_and_rule(values: dict[str, object], expected: str) -> None:
    problems = validate_args(values)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)


def test_every_argument_is_documented() -> None:
    docs = argument_docs()
    assert set(docs) == set(TrainingArguments.model_fields)
    assert "default 0.0002" in docs["learning_rate"]


def test_schema_and_config_import_without_torch() -> None:
    code = (
        "import sys, kubetune_trainer, kubetune.spec.training_args, kubetune_trainer.config;"
        "heavy = {'torch', 'transformers', 'peft'} & set(sys.modules);"
        "sys.exit(f'imported {heavy}' if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
