"""Training throughput and peak memory: kubetune's trainer vs transformers.Trainer + peft.

Same model, data, LoRA settings, batch size, sequence length and number of steps, in
the same run. Each side runs in its own subprocess (so peak memory is its own), in
alternating order, and the best of `--repeats` is kept for each. The baseline is
`transformers.Trainer` with default arguments on examples tokenized to max_length
(the common recipe); `--baseline-padding longest` pads per batch instead
(DataCollatorForSeq2Seq), a stronger baseline, also reported.

    python bench/trainer_throughput.py                       # CPU, tiny model
    python bench/trainer_throughput.py --device cuda --model-size 0.5b   # later, on a GPU

Tokens are real (non-padding) tokens: both sides train on exactly the same ones.
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
    run.train()
    return {
        "tokens": progress.latest["train_tokens"],
        "tokens_per_second": progress.latest["tokens_per_second"],
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
    }


def run_baseline(opts: argparse.Namespace, model_path: str, data: Path) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForSeq2Seq,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    records = [json.loads(line) for line in data.read_text().splitlines()][8:]
    features = []
    real_tokens = []
    for record in records:
        prompt = tokenizer(f"Q: {record['prompt']}\nA:")["input_ids"]
        answer = tokenizer(" " + record["response"], add_special_tokens=False)["input_ids"]
        ids = (prompt + answer + [tokenizer.eos_token_id])[: opts.max_length]
        labels = ([-100] * len(prompt) + answer + [tokenizer.eos_token_id])[: opts.max_length]
        real_tokens.append(len(ids))
        if opts.baseline_padding == "max_length":
            pad = opts.max_length - len(ids)
            features.append(
                {
                    "input_ids": ids + [tokenizer.pad_token_id] * pad,
                    "attention_mask": [1] * len(ids) + [0] * pad,
                    "labels": labels + [-100] * pad,
                }
            )
        else:
            features.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    dtype = torch.bfloat16 if opts.device == "cuda" else torch.float32
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
    model = get_peft_model(
        base,
        LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )

    class StepTimer(TrainerCallback):
        """Time inside optimizer steps only (data loading excluded: favours the baseline)."""

        def __init__(self) -> None:
            self.seconds = 0.0
            self.started = 0.0

        def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
            self.started = time.monotonic()

        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            if opts.device == "cuda":
                torch.cuda.synchronize()
            self.seconds += time.monotonic() - self.started

    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=out,
                per_device_train_batch_size=opts.batch_size,
                max_steps=opts.steps,
                learning_rate=1e-4,
                seed=opts.seed,
                save_strategy="no",
                use_cpu=opts.device == "cpu",
                bf16=opts.device == "cuda",
                disable_tqdm=True,
            ),
            train_dataset=features,
            data_collator=(
                default_data_collator
                if opts.baseline_padding == "max_length"
                else DataCollatorForSeq2Seq(tokenizer, padding="longest")
            ),
            callbacks=[timer],
        )
        trainer.train()
    # The sampler shuffles: count the real tokens the same way ours does, per example seen.
    seen = opts.steps * opts.batch_size
    tokens = sum(real_tokens) * seen / len(real_tokens)
    return {"tokens": tokens, "tokens_per_second": tokens / timer.seconds}


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


def run_side(
    side: str, opts: argparse.Namespace, model_path: str, data: Path, padding: str
) -> dict[str, Any]:
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
        "--baseline-padding", padding,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{side} failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    return figures


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
    # Internal: one side in a child process.
    parser.add_argument("--side", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--model-path", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument(
        "--baseline-padding",
        choices=["max_length", "longest"],
        default="max_length",
        help=argparse.SUPPRESS,
    )
    opts = parser.parse_args()
    if opts.side:
        side_main(opts)
        return 0
    if opts.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("--device cuda: no CUDA device visible", file=sys.stderr)
            return 2

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        model_path = opts.model_dir or prepare_model(opts.model_size, workdir)
        data = workdir / "data.jsonl"
        records = make_records(8 + opts.steps * opts.batch_size, opts.max_length, opts.seed)
        data.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "baseline": [], "baseline_longest": []}
        for repeat in range(opts.repeats):
            order = ["ours", "baseline", "baseline_longest"]
            for name in order if repeat % 2 == 0 else order[::-1]:
                side = "ours" if name == "ours" else "baseline"
                padding = "longest" if name == "baseline_longest" else "max_length"
                figures = run_side(side, opts, model_path, data, padding)
                runs[name].append(figures)
                print(
                    f"{name:>17}: {figures['tokens_per_second']:9.0f} tokens/s, "
                    f"peak {figures['peak_memory_bytes'] / 2**20:7.0f} MiB",
                    flush=True,
                )

    best = {name: max(r, key=lambda f: f["tokens_per_second"]) for name, r in runs.items()}
    ours, base, longest = best["ours"], best["baseline"], best["baseline_longest"]
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
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "ours": ours,
        "baseline_trainer_pad_max_length": base,
        "baseline_trainer_pad_longest": longest,
        "ratio_tokens_per_second": ours["tokens_per_second"] / base["tokens_per_second"],
        "ratio_tokens_per_second_vs_pad_longest": ours["tokens_per_second"]
        / longest["tokens_per_second"],
        "ratio_peak_memory": ours["peak_memory_bytes"] / base["peak_memory_bytes"],
        "all_runs": runs,
    }
    if opts.device == "cuda":
        report["mfu"] = mfu(ours["tokens_per_second"], ours.get("parameters", 0))
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"tokens/s ratio ours/Trainer(pad max_length): {report['ratio_tokens_per_second']:.2f}x; "
        f"vs Trainer(pad longest): {report['ratio_tokens_per_second_vs_pad_longest']:.2f}x; "
        f"peak memory ratio: {report['ratio_peak_memory']:.2f} -> {opts.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
