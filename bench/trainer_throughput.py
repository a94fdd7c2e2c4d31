"""Training throughput and peak memory: kubetune's trainer vs transformers.Trainer and TRL.

Same model, data, LoRA settings, batch size, sequence length and one epoch, in the same
run. Each side runs in its own subprocess (so peak memory is its own), in alternating
order, and the best of `--repeats` is kept for each. The baselines (BASELINES) are what a
well-informed user would run: transformers.Trainer padding to max_length, per batch, per
batch of similar lengths, or padding-free (DataCollatorWithFlattening); TRL's SFTTrainer
padding-free or packed (when trl is installed: the [dev] extra). Ratios are ours / each.

    python bench/trainer_throughput.py                       # CPU, tiny model
    python bench/trainer_throughput.py --device cuda --model-size 0.5b   # on a GPU

Tokens are real (non-padding) tokens: every side trains on the same token ids, once.
Writes results/trainer_throughput.json and a table in results/trainer_throughput.md.
On CUDA it also reports MFU against the GPU's dense bf16 peak.
"""

import argparse
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "trainer_throughput.json"

# A Qwen2.5-0.5B-shaped Llama config (random weights: throughput does not depend on them).
MODEL_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {},
    "0.5b": {
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
    },
}
# Dense bf16 peak FLOP/s by device name fragment (vendor datasheets, SXM parts).
BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def make_records(n: int, max_length: int, seed: int) -> list[dict[str, str]]:
    """Instruction examples with a long-tailed length distribution, as real SFT data has.

    Most are short and a few approach max_length (word counts log-normal; a word is a
    few tokens with the tiny tokenizer): padding every example to max_length wastes
    most of the compute, as it does on real data.
    """
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "kappa", "omega", "sigma", "theta"]
    typical = max(2.0, max_length / 40)
    records = []
    for _ in range(n):
        prompt_words = max(1, min(max_length, int(rng.lognormvariate(math.log(typical), 0.8))))
        answer_words = max(1, min(max_length, int(rng.lognormvariate(math.log(typical / 2), 0.8))))
        records.append(
            {
                "prompt": "Repeat: " + " ".join(rng.choices(words, k=prompt_words)),
                "response": " ".join(rng.choices(words, k=answer_words)),
            }
        )
    return records


def prepare_model(size: str, workdir: Path) -> str:
    """A model folder loadable with from_pretrained: the tiny model, or a larger random one."""
    from kubetune_trainer import tiny
    from kubetune_trainer.config import default_cache_dir

    tiny_path = tiny.ensure_tiny(default_cache_dir(os.environ))
    if size == "tiny":
        return str(tiny_path)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_path)
    overrides = dict(MODEL_SIZES[size])
    vocab = overrides.pop("vocab_size")
    model = tiny.build_model(tokenizer, overrides)
    model.resize_token_embeddings(vocab, mean_resizing=False)  # random weights anyway
    target = workdir / f"model-{size}"
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return str(target)


def peak_memory_bytes(device: str) -> int:
    import torch

    if device == "cuda":
        return int(torch.cuda.max_memory_allocated())
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def run_ours(opts: argparse.Namespace, model_path: str, data: Path) -> dict[str, Any]:
    from kubetune.spec import TrainerSpec
    from kubetune.spec.training_args import parse_args
    from kubetune_trainer.config import Identity, RunConfig
    from kubetune_trainer.data import load_splits
    from kubetune_trainer.metrics import TrainerMetrics
    from kubetune_trainer.modeling import load_model
    from kubetune_trainer.progress import Progress
    from kubetune_trainer.stopping import StopFlag
    from kubetune_trainer.training import Run, seed_everything

    spec = TrainerSpec.model_validate(
        {
            "model": model_path,
            "dataset": {"path": str(data), "evalSplit": "train[:8]", "trainSplit": "train[8:]"},
            "maxSteps": opts.steps,
            "evalEvery": opts.steps + 1,
        }
    )
    args = parse_args(
        {
            "learning_rate": 1e-4,
            "lora_r": 16,
            "lora_dropout": 0.0,
            "per_device_train_batch_size": opts.batch_size,
            "max_length": opts.max_length,
            "eval_max_samples": 1,
            "precision": "auto" if opts.device == "cuda" else "fp32",
        }
    )
    config = RunConfig(trainer=spec, args=args, metrics_port=None)
    seed_everything(opts.seed)
    stop = StopFlag()
    loaded = load_model(model_path, "lora", args, Path(tempfile.gettempdir()), stop)
    progress = Progress()
    run = Run(
        config, loaded, load_splits(spec.dataset), TrainerMetrics(Identity(), {}), progress, stop
    )
    run.evaluate = lambda step: {}  # type: ignore[method-assign]  # training only
    cpu_started = time.process_time()
    run.train()
    cpu_seconds = time.process_time() - cpu_started
    return {
        "tokens": progress.latest["train_tokens"],
        "tokens_per_second": progress.latest["tokens_per_second"],
        # CPU time of the whole train() (step loop, data included): against ours.
        "tokens_per_cpu_second": progress.latest["train_tokens"] / cpu_seconds,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
    }


# Each baseline: how a well-informed user would run transformers.Trainer or TRL's SFTTrainer.
BASELINES: dict[str, str] = {
    "trainer_pad_max_length": "transformers.Trainer, examples padded to max_length "
    "(default_data_collator)",
    "trainer_pad_longest": "transformers.Trainer, padded per batch to its longest example "
    "(DataCollatorForSeq2Seq)",
    "trainer_group_by_length": "transformers.Trainer, padded per batch, batches of similar "
    "lengths (train_sampling_strategy='group_by_length'; unlike every other side, a step "
    "no longer trains on a random batch)",
    "trainer_flattening": "transformers.Trainer + DataCollatorWithFlattening (padding-free: "
    "the batch in one row, position ids restart per example)",
    "sft_padding_free": "trl.SFTTrainer, padding_free=True (the batch in one row)",
    "sft_packing": "trl.SFTTrainer, packing=True (best-fit-decreasing rows of max_length, "
    "padding-free); rows per step chosen to hold about batch_size examples' tokens",
}


def tokenized_features(
    opts: argparse.Namespace, model_path: str, data: Path
) -> list[dict[str, Any]]:
    """The training examples as token ids: prompt, answer, EOS, cut at max_length; the
    prompt carries no loss. The same tokens our trainer trains on."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    records = [json.loads(line) for line in data.read_text().splitlines()][8:]
    features = []
    for record in records:
        prompt = tokenizer(f"Q: {record['prompt']}\nA:")["input_ids"]
        answer = tokenizer(" " + record["response"], add_special_tokens=False)["input_ids"]
        ids = (prompt + answer + [tokenizer.eos_token_id])[: opts.max_length]
        completion = ([0] * len(prompt) + [1] * (len(answer) + 1))[: opts.max_length]
        features.append({"input_ids": ids, "completion_mask": completion})
    return features


def trainer_dataset(
    variant: str, features: list[dict[str, Any]], max_length: int, pad_id: int
) -> list[dict[str, Any]]:
    rows = []
    for feature in features:
        ids = feature["input_ids"]
        labels = [
            t if keep else -100 for t, keep in zip(ids, feature["completion_mask"], strict=True)
        ]
        if variant == "trainer_pad_max_length":
            pad = max_length - len(ids)
            rows.append(
                {
                    "input_ids": ids + [pad_id] * pad,
                    "attention_mask": [1] * len(ids) + [0] * pad,
                    "labels": labels + [-100] * pad,
                }
            )
        elif variant == "trainer_flattening":
            rows.append({"input_ids": ids, "labels": labels})
        else:
            rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


def run_baseline(opts: argparse.Namespace, model_path: str, data: Path) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    variant = opts.side
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    features = tokenized_features(opts, model_path, data)
    dtype = torch.bfloat16 if opts.device == "cuda" else torch.float32
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    lora = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
    )

    class StepTimer(TrainerCallback):
        """Time inside optimizer steps only (data loading excluded: favours the baseline)."""

        def __init__(self) -> None:
            self.seconds = 0.0
            self.started = 0.0
            self.cpu_seconds = 0.0
            self.cpu_started = 0.0

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()
            self.cpu_started = time.process_time()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            if opts.device == "cuda":
                torch.cuda.synchronize()
            self.seconds += time.monotonic() - self.started
            self.cpu_seconds += time.process_time() - self.cpu_started

    timer = StepTimer()
    common: dict[str, Any] = {
        "per_device_train_batch_size": opts.batch_size,
        "max_steps": opts.steps,
        "learning_rate": 1e-4,
        "seed": opts.seed,
        "save_strategy": "no",
        "use_cpu": opts.device == "cpu",
        "bf16": opts.device == "cuda",
        "disable_tqdm": True,
        "report_to": "none",
    }
    with tempfile.TemporaryDirectory() as out:
        if variant.startswith("sft_"):
            trainer = _sft_trainer(opts, base, lora, tokenizer, features, common, out, timer)
        else:
            trainer = _trainer(variant, opts, base, lora, tokenizer, features, common, out, timer)
        trainer.train()
    if variant.startswith("sft_"):
        # SFTTrainer counts the tokens of its padding-free rows itself.
        tokens = float(trainer._total_train_tokens)
    else:
        # One epoch over the examples (steps x batch size of them): every real token once.
        tokens = float(sum(len(f["input_ids"]) for f in features))
    return {
        "tokens": tokens,
        "tokens_per_second": tokens / timer.seconds,
        "tokens_per_cpu_second": tokens / timer.cpu_seconds,
    }


def _trainer(
    variant: str,
    opts: argparse.Namespace,
    base: Any,
    lora: Any,
    tokenizer: Any,
    features: list[dict[str, Any]],
    common: dict[str, Any],
    out: str,
    timer: Any,
) -> Any:
    from peft import get_peft_model
    from transformers import (
        DataCollatorForSeq2Seq,
        DataCollatorWithFlattening,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    collators: dict[str, Any] = {
        "trainer_pad_max_length": default_data_collator,
        "trainer_pad_longest": DataCollatorForSeq2Seq(tokenizer, padding="longest"),
        "trainer_group_by_length": DataCollatorForSeq2Seq(tokenizer, padding="longest"),
        "trainer_flattening": DataCollatorWithFlattening(),
    }
    extra: dict[str, Any] = {}
    if variant == "trainer_group_by_length":
        extra["train_sampling_strategy"] = "group_by_length"
    return Trainer(
        model=get_peft_model(base, lora),
        args=TrainingArguments(output_dir=out, **common, **extra),
        train_dataset=trainer_dataset(variant, features, opts.max_length, tokenizer.pad_token_id),
        data_collator=collators[variant],
        processing_class=tokenizer,
        callbacks=[timer],
    )


def packed_rows_per_step(features: list[dict[str, Any]], batch_size: int, max_length: int) -> int:
    """Packed rows of max_length holding about batch_size examples' tokens, so a packed
    step trains as many tokens as an unpacked one."""
    mean = sum(len(f["input_ids"]) for f in features) / len(features)
    return max(1, round(batch_size * mean / max_length))


def _sft_trainer(
    opts: argparse.Namespace,
    base: Any,
    lora: Any,
    tokenizer: Any,
    features: list[dict[str, Any]],
    common: dict[str, Any],
    out: str,
    timer: Any,
) -> Any:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    settings = dict(common)
    if opts.side == "sft_packing":
        # One epoch, as every other side: the packed rows, a few per step.
        settings.pop("max_steps")
        settings["num_train_epochs"] = 1
        settings["per_device_train_batch_size"] = packed_rows_per_step(
            features, opts.batch_size, opts.max_length
        )
        mode: dict[str, Any] = {"packing": True, "max_length": opts.max_length}
    else:
        # The examples are already cut at max_length (padding-free refuses a max_length).
        mode = {"padding_free": True, "max_length": None}
    return SFTTrainer(
        model=base,
        args=SFTConfig(output_dir=out, completion_only_loss=True, **settings, **mode),
        train_dataset=Dataset.from_list(features),
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[timer],
    )


def side_main(opts: argparse.Namespace) -> None:
    """One side in this process; prints one JSON line."""
    import torch

    torch.set_num_threads(opts.threads)
    data = Path(opts.data)
    started = time.monotonic()
    side = run_ours if opts.side == "ours" else run_baseline
    figures = side(opts, opts.model_path, data)
    figures["peak_memory_bytes"] = peak_memory_bytes(opts.device)
    figures["seconds"] = time.monotonic() - started
    print("RESULT " + json.dumps(figures), flush=True)


def run_side(side: str, opts: argparse.Namespace, model_path: str, data: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--side", side,
        "--model-path", model_path,
        "--data", str(data),
        "--device", opts.device,
        "--steps", str(opts.steps),
        "--batch-size", str(opts.batch_size),
        "--max-length", str(opts.max_length),
        "--threads", str(opts.threads),
        "--seed", str(opts.seed),
    ]  # fmt: skip
    load = os.getloadavg()[0]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{side} failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    figures["load_average_1m"] = round((load + os.getloadavg()[0]) / 2, 2)
    return figures


def available_sides() -> list[str]:
    """ours and every baseline whose library is installed (TRL is a [dev] extra)."""
    import importlib.util

    sides = ["ours", *BASELINES]
    if importlib.util.find_spec("trl") is None:
        print("trl is not installed: the SFTTrainer baselines are skipped", file=sys.stderr)
        sides = [side for side in sides if not side.startswith("sft_")]
    return sides


def mfu(tokens_per_second: float, parameters: int) -> dict[str, Any] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in BF16_PEAK.items() if k in name), None)
    if peak is None:
        return {"device": name, "note": "unknown bf16 peak"}
    # LoRA: forward 2N plus input-gradient backward 2N FLOPs per token (no weight grads
    # for the frozen base; adapters and attention scores left out: a slight undercount).
    achieved = 4 * parameters * tokens_per_second
    return {"device": name, "bf16_peak_flops": peak, "mfu": achieved / peak}


def summary(report: dict[str, Any], output: Path) -> str:
    """The .md beside the .json: one table, ratios against every baseline."""
    settings, machine, sides = report["settings"], report["machine"], report["sides"]
    load = machine["load_average_1m"]
    lines = [
        "# Trainer throughput (bench/trainer_throughput.py)",
        "",
        f"{report['device']}, {report['model_size']} model, LoRA r=16 on all linear layers, "
        f"batch {settings['batch_size']}, max_length {settings['max_length']}, "
        f"{settings['steps']} steps (one epoch), {settings['threads']} thread(s), best of "
        f"{settings['repeats']} runs per side in alternating order; mean example "
        f"{settings['mean_example_tokens']} tokens. Load average (1 min) during the runs: "
        f"{load['min']}-{load['max']} on {machine['cpus']} CPUs. Tokens per second of wall "
        "time and of the process's CPU time (the steady figure on a shared machine); peak "
        "memory: the largest peak RSS of a side's runs.",
        "",
        "| side | tokens/s | tokens/CPU-s | peak MiB | ours/side tokens/s | ours/side tokens/CPU-s"
        " | ours/side peak |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, figures in sides.items():
        ratios = report["ratios"].get(name)
        shown = (
            f"{ratios['tokens_per_second']:.2f}x | {ratios['tokens_per_cpu_second']:.2f}x | "
            f"{ratios['peak_memory']:.2f}"
            if ratios
            else " | | "
        )
        what = "kubetune_trainer" if name == "ours" else BASELINES[name]
        lines.append(
            f"| {name}: {what} | {figures['tokens_per_second']:.0f} | "
            f"{figures['tokens_per_cpu_second']:.0f} | "
            f"{figures['peak_memory_bytes'] / 2**20:.0f} | {shown} |"
        )
    strongest = report["strongest_baseline"]
    lines += [
        "",
        f"Strongest baseline ({report['primary_measure']}): {strongest}; ours is "
        f"{report['ratio_vs_strongest']:.2f}x its {report['primary_measure']} at "
        f"{report['ratios'][strongest]['peak_memory']:.2f}x its peak memory.",
        "",
        f"Every run: {output.name}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--model-size", choices=sorted(MODEL_SIZES), default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--model-dir", help="an existing model folder to use instead of --model-size's"
    )
    parser.add_argument(
        "--sides", nargs="+", help="only these sides (ours and baseline names; default: all)"
    )
    # Internal: one side in a child process.
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--model-path", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.side:
        side_main(opts)
        return 0
    if opts.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("--device cuda: no CUDA device visible", file=sys.stderr)
            return 2
    sides = available_sides()
    if opts.sides:
        unknown = sorted(set(opts.sides) - {"ours", *BASELINES})
        if unknown:
            print(f"--sides: unknown {', '.join(unknown)}", file=sys.stderr)
            return 2
        sides = ["ours", *[side for side in sides if side in opts.sides and side != "ours"]]

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model_path = opts.model_dir or prepare_model(opts.model_size, workdir)
        data = workdir / "data.jsonl"
        records = make_records(8 + opts.steps * opts.batch_size, opts.max_length, opts.seed)
        data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        for repeat in range(opts.repeats):
            for side in sides if repeat % 2 == 0 else sides[::-1]:
                figures = run_side(side, opts, model_path, data)
                runs[side].append(figures)
                print(
                    f"{side:>24}: {figures['tokens_per_second']:9.0f} tokens/s, "
                    f"{figures['tokens_per_cpu_second']:9.0f} tokens/CPU-s, "
                    f"peak {figures['peak_memory_bytes'] / 2**20:7.0f} MiB, "
                    f"load {figures['load_average_1m']:.1f}",
                    flush=True,
                )

    # On CPU the primary measure is CPU time: steady on a machine other processes share.
    primary = "tokens_per_cpu_second" if opts.device == "cpu" else "tokens_per_second"
    best = {
        name: {
            "tokens": r[0]["tokens"],
            "tokens_per_second": max(f["tokens_per_second"] for f in r),
            "tokens_per_cpu_second": max(f["tokens_per_cpu_second"] for f in r),
            "peak_memory_bytes": max(f["peak_memory_bytes"] for f in r),
            "parameters": r[0].get("parameters"),
        }
        for name, r in runs.items()
    }
    ours = best["ours"]
    ratios = {
        name: {
            key: ours[key] / best[name][key]
            for key in ("tokens_per_second", "tokens_per_cpu_second")
        }
        | {"peak_memory": ours["peak_memory_bytes"] / best[name]["peak_memory_bytes"]}
        for name in sides
        if name != "ours"
    }
    strongest = max(ratios, key=lambda name: best[name][primary])
    loads = [f["load_average_1m"] for r in runs.values() for f in r]
    report: dict[str, Any] = {
        "benchmark": "trainer_throughput",
        "device": opts.device,
        "model_size": opts.model_size,
        "model_dir": opts.model_dir,
        "settings": {
            "method": "lora",
            "lora_r": 16,
            "target_modules": "all-linear",
            "steps": opts.steps,
            "batch_size": opts.batch_size,
            "max_length": opts.max_length,
            "threads": opts.threads,
            "repeats": opts.repeats,
            "mean_example_tokens": round(ours["tokens"] / (opts.steps * opts.batch_size), 1),
        },
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_1m": {"min": min(loads), "max": max(loads)},
        },
        "ours": ours,
        "baselines": {name: BASELINES[name] for name in ratios},
        "sides": best,
        "primary_measure": primary,
        "ratios": ratios,
        "strongest_baseline": strongest,
        "ratio_vs_strongest": ratios[strongest][primary],
        "all_runs": runs,
    }
    # The first figures this benchmark reported, kept under their names (bench/gpu_check.py).
    for name, key in (
        ("trainer_pad_max_length", "ratio_tokens_per_second"),
        ("trainer_pad_longest", "ratio_tokens_per_second_vs_pad_longest"),
    ):
        if name in ratios:
            report[key] = ratios[name]["tokens_per_second"]
    if "trainer_pad_max_length" in ratios:
        report["ratio_peak_memory"] = ratios["trainer_pad_max_length"]["peak_memory"]
    if opts.device == "cuda":
        report["mfu"] = mfu(ours["tokens_per_second"], ours["parameters"] or 0)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(report, indent=2) + "\n")
    opts.output.with_suffix(".md").write_text(summary(report, opts.output))
    for name, ratio in ratios.items():
        print(
            f"ours / {name}: {ratio['tokens_per_second']:.2f}x tokens/s, "
            f"{ratio['tokens_per_cpu_second']:.2f}x tokens/CPU-s, "
            f"{ratio['peak_memory']:.2f}x peak memory"
        )
    print(f"strongest baseline {strongest}: {report['ratio_vs_strongest']:.2f}x -> {opts.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
