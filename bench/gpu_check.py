"""One GPU check, run once on a lent GPU machine: each training path on real CUDA, timed.

Steps, each a subprocess with its own timeout, all under one deadline (default 450 s):
  env         torch/CUDA/package versions, GPUs seen; stops early when something is missing
  model       a Qwen2.5-0.5B-shaped Llama built from a config (random weights, no download)
  lora        kubetune's trainer, bf16 LoRA
  qlora       kubetune's trainer, 4-bit QLoRA (skipped when bitsandbytes is absent)
  full        kubetune's trainer, full fine-tuning (fp32 master weights, bf16 autocast)
  throughput  bench/trainer_throughput.py against transformers.Trainer + peft, with MFU
  ddp         2-process DistributedDataParallel (NCCL), when two GPUs are visible

Writes <out>/gpu-check.json (every step: status, seconds, figures) and
<out>/gpu-throughput.json. `--dry-run` runs the same steps on CPU with tiny sizes (DDP
over gloo), so CI can check this script without a GPU. scripts/gpu-check.sh wraps it.
Only the standard library is imported here: the env step reports missing packages.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
# Packages every step needs, by import name; bitsandbytes only for qlora.
REQUIRED = (
    "torch",
    "transformers",
    "peft",
    "tokenizers",
    "safetensors",
    "pydantic",
    "yaml",
    "filelock",
    "prometheus_client",
)
# Per-step limits (seconds); the overall deadline caps them further.
TIMEOUTS = {
    "env": 60,
    "model": 90,
    "lora": 75,
    "qlora": 90,
    "full": 90,
    "throughput": 150,
    "ddp": 90,
}
EXIT_MISSING = 3


@dataclass(frozen=True)
class Sizes:
    """What each step trains on: a 0.5B-shaped model on the GPU, a tiny one in a dry run."""

    architecture: dict[str, Any]
    vocab_size: int
    steps: int
    batch_size: int
    max_length: int
    throughput_steps: int


GPU_SIZES = Sizes(
    architecture={
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": True,
    },
    vocab_size=151936,
    steps=30,
    batch_size=8,
    max_length=512,
    throughput_steps=20,
)
DRY_SIZES = Sizes(
    architecture={
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
    },
    vocab_size=512,
    steps=3,
    batch_size=2,
    max_length=64,
    throughput_steps=2,
)


@dataclass
class Step:
    name: str
    status: str = "pending"  # ok | failed | skipped | timeout
    seconds: float = 0.0
    detail: str = ""
    figures: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "seconds": round(self.seconds, 1),
            "detail": self.detail,
            **({"figures": self.figures} if self.figures else {}),
        }


class Check:
    """Runs the steps in order, each bounded by its own timeout and the shared deadline."""

    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.dry = bool(opts.dry_run)
        self.sizes = DRY_SIZES if self.dry else GPU_SIZES
        self.device = "cpu" if self.dry else "cuda"
        self.deadline = time.monotonic() + opts.budget
        self.steps: dict[str, Step] = {}
        self.env_info: dict[str, Any] = {}
        self.work = Path(tempfile.mkdtemp(prefix="kubetune-gpu-check-"))
        self.model_dir = self.work / "model"

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(ROOT / "operator"), str(ROOT / "trainer-image")]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["HF_HUB_OFFLINE"] = "1"  # nothing is fetched: the machine has no network
        env["PYTHONUNBUFFERED"] = "1"
        env.setdefault("KUBETUNE_CACHE_DIR", str(self.work / "cache"))
        if self.dry:
            env["CUDA_VISIBLE_DEVICES"] = ""  # the dry run is CPU even where a GPU exists
            env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def timeout(self, name: str) -> float:
        return max(1.0, min(TIMEOUTS[name] * self.opts.timeout_scale, self.left()))

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, command: list[str]) -> tuple[Step, str]:
        """Run one step's command; its last `RESULT {json}` line becomes the step's figures."""
        step = self.steps.setdefault(name, Step(name))
        if self.left() < 5:
            step.status, step.detail = "skipped", "overall time budget spent"
            return step, ""
        limit = self.timeout(name)
        started = time.monotonic()
        try:
            done = subprocess.run(
                command,
                cwd=ROOT,
                env=self.child_env(),
                capture_output=True,
                text=True,
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired as expired:
            step.seconds = time.monotonic() - started
            step.status, step.detail = "timeout", f"killed after {limit:.0f}s"
            return step, _text(expired.stderr)
        step.seconds = time.monotonic() - started
        results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if results:
            step.figures = json.loads(results[-1].removeprefix("RESULT "))
        if done.returncode == 0:
            step.status = "ok"
        else:
            step.status = "failed"
            step.detail = f"exit {done.returncode}: {_last_lines(done.stderr)}"
        return step, done.stderr

    def skip(self, name: str, why: str) -> None:
        self.steps[name] = Step(name, status="skipped", detail=why)

    # --- the steps -------------------------------------------------------------------

    def env_step(self) -> bool:
        probe = (
            "import importlib.util, json, platform\n"
            f"names = {[*REQUIRED, 'bitsandbytes']!r}\n"
            "info = {'python': platform.python_version(),\n"
            "        'missing': [n for n in names if importlib.util.find_spec(n) is None]}\n"
            "import importlib.metadata as md\n"
            "for n in ('torch', 'transformers', 'peft', 'bitsandbytes', 'pydantic'):\n"
            "    try: info[n] = md.version(n)\n"
            "    except md.PackageNotFoundError: pass\n"
            "if 'torch' not in info['missing']:\n"
            "    import torch\n"
            "    info['cuda_build'] = torch.version.cuda\n"
            "    info['gpus'] = [torch.cuda.get_device_name(i)\n"
            "                    for i in range(torch.cuda.device_count())]\n"
            "    info['bf16'] = bool(info['gpus']) and torch.cuda.is_bf16_supported()\n"
            "print('RESULT ' + json.dumps(info))\n"
        )
        step, _ = self.run("env", [sys.executable, "-c", probe])
        self.env_info = step.figures
        if step.status != "ok":
            return False
        missing = [n for n in self.env_info["missing"] if n != "bitsandbytes"]
        problems = []
        if missing:
            problems.append(
                f"missing Python packages for {sys.executable}: {', '.join(missing)} "
                "(carry them as wheels in .whl/, see README 'GPU check')"
            )
        if not self.dry and "torch" not in missing:
            if not self.env_info.get("cuda_build"):
                problems.append(f"torch {self.env_info.get('torch')} is a CPU-only build")
            elif not self.env_info.get("gpus"):
                problems.append("torch sees no CUDA device (nvidia-smi? CUDA_VISIBLE_DEVICES?)")
        if problems:
            step.status, step.detail = "failed", "; ".join(problems)
            return False
        gpus = self.env_info.get("gpus", [])
        step.detail = f"python {self.env_info['python']}, torch {self.env_info.get('torch')}, " + (
            f"{len(gpus)} GPU(s): {', '.join(gpus)}" if gpus else "CPU dry run"
        )
        return True

    def model_step(self) -> bool:
        sizes = self.sizes
        build = (
            "import json, sys, time, torch\n"
            "from kubetune_trainer import synthetic, tiny\n"
            "started = time.monotonic()\n"
            "tok = tiny.build_tokenizer(synthetic.pretraining_corpus(), 320)\n"
            f"model = tiny.build_model(tok, {sizes.architecture!r})\n"
            f"model.resize_token_embeddings({sizes.vocab_size}, mean_resizing=False)\n"
            "model.to(torch.bfloat16)  # half the bytes to write and read; training upcasts\n"
            "model.save_pretrained(sys.argv[1])\n"
            "tok.save_pretrained(sys.argv[1])\n"
            "n = sum(p.numel() for p in model.parameters())\n"
            "print('RESULT ' + json.dumps({'parameters': n,\n"
            "      'build_seconds': round(time.monotonic() - started, 1)}))\n"
        )
        step, _ = self.run("model", [sys.executable, "-c", build, str(self.model_dir)])
        if step.status == "ok":
            step.detail = f"{step.figures['parameters']:,} parameters"
        return step.status == "ok"

    def trainer_step(self, name: str, method: str) -> None:
        """One trial of kubetune's own trainer (python -m kubetune_trainer), as a pod runs it."""
        sizes = self.sizes
        out = self.work / f"trial-{name}"
        out.mkdir(parents=True)
        config = out.parent / f"trainer-{name}.json"
        trainer = {
            "model": str(self.model_dir),
            "method": method,
            "dataset": {"path": "synthetic:arithmetic"},
            "maxSteps": sizes.steps,
            "evalEvery": sizes.steps,
        }
        params = {
            "learning_rate": 1e-4,
            "per_device_train_batch_size": sizes.batch_size,
            "max_length": sizes.max_length,
            "eval_max_samples": 8,
            "precision": "fp32" if self.dry else "bf16",
        }
        config.write_text(json.dumps(trainer))
        command = [
            sys.executable,
            "-m",
            "kubetune_trainer",
            "--config",
            str(config),
            "--params",
            json.dumps(params),
            "--output-dir",
            str(out),
            "--metrics-port",
            "-1",
            "--termination-log",
            str(out / "termination-log"),
        ]
        step, _ = self.run(name, command)
        result_file = out / "result.json"
        if result_file.exists():
            result = json.loads(result_file.read_text())
            metrics = result.get("metrics", {})
            step.figures = {
                "status": result.get("status"),
                "steps": result.get("steps"),
                "wall_seconds": result.get("wallSeconds"),
                "tokens_per_second": metrics.get("tokens_per_second"),
                "train_loss": metrics.get("train_loss"),
                "eval_loss": metrics.get("eval_loss"),
            }
            if result.get("status") != "succeeded" and step.status == "ok":
                step.status = "failed"
                step.detail = f"trial ended {result.get('status')}: {result.get('reason')}"
        elif step.status == "ok":
            step.status, step.detail = "failed", "the trainer wrote no result.json"
        if step.status == "ok":
            step.detail = (
                f"{step.figures['steps']} steps, "
                f"{step.figures['tokens_per_second'] or 0:.0f} tokens/s"
            )

    def throughput_step(self) -> None:
        sizes = self.sizes
        output = self.opts.out / "gpu-throughput.json"
        command = [
            sys.executable,
            str(BENCH / "trainer_throughput.py"),
            "--device", self.device,
            "--model-dir", str(self.model_dir),
            "--steps", str(sizes.throughput_steps),
            "--batch-size", str(sizes.batch_size),
            "--max-length", str(sizes.max_length),
            "--repeats", "1",
            "--threads", "1" if self.dry else "8",
            "--output", str(output),
        ]  # fmt: skip
        if self.dry:
            # The dry run checks the script, not the figures: two baselines are enough.
            command += ["--sides", "trainer_pad_max_length", "trainer_pad_longest"]
        step, _ = self.run("throughput", command)
        if step.status == "ok" and output.exists():
            report = json.loads(output.read_text())
            step.figures = {
                "ours_tokens_per_second": report["ours"]["tokens_per_second"],
                "ratio_vs_trainer_pad_max_length": report["ratio_tokens_per_second"],
                "ratio_vs_trainer_pad_longest": report["ratio_tokens_per_second_vs_pad_longest"],
                "ratio_peak_memory": report["ratio_peak_memory"],
                "mfu": report.get("mfu"),
                "report": str(output),
            }
            mfu = (report.get("mfu") or {}).get("mfu")
            step.detail = f"{report['ratio_tokens_per_second']:.2f}x Trainer" + (
                f", MFU {mfu:.1%}" if mfu is not None else ""
            )
        elif step.status == "ok":
            step.status, step.detail = "failed", f"no {output.name} written"

    def ddp_step(self) -> None:
        gpus = len(self.env_info.get("gpus", []))
        if not self.dry and gpus < 2:
            self.skip("ddp", f"needs two GPUs, {gpus} visible")
            return
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(BENCH / "gpu_check_ddp.py"),
            "--model-dir", str(self.model_dir),
            "--device", self.device,
            "--steps", str(self.sizes.steps),
            "--batch-size", str(self.sizes.batch_size),
            "--max-length", str(self.sizes.max_length),
        ]  # fmt: skip
        step, _ = self.run("ddp", command)
        if step.status == "ok" and not step.figures.get("in_sync"):
            step.status, step.detail = "failed", "ranks' weights differ after training"
        elif step.status == "ok":
            step.detail = f"{step.figures['tokens_per_second']:.0f} tokens/s over 2 ranks"

    def main(self) -> int:
        started = time.monotonic()
        names = ["env", "model", "lora", "qlora", "full", "throughput", "ddp"]
        if self.env_step() and self.model_step():
            self.trainer_step("lora", "lora")
            missing = self.env_info.get("missing", [])
            if self.dry:
                self.skip("qlora", "dry run: QLoRA needs CUDA (bitsandbytes 4-bit)")
            elif "bitsandbytes" in missing:
                self.skip("qlora", "bitsandbytes is not installed: carry its wheel in .whl/")
            else:
                self.trainer_step("qlora", "qlora")
            self.trainer_step("full", "full")
            self.throughput_step()
            self.ddp_step()
        for name in names:
            if name not in self.steps:
                self.skip(name, "not run: an earlier step failed")
        report = {
            "check": "gpu_check",
            "dry_run": self.dry,
            "device": self.device,
            "seconds": round(time.monotonic() - started, 1),
            "budget_seconds": self.opts.budget,
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "environment": self.env_info,
            "sizes": {
                "architecture": self.sizes.architecture,
                "vocab_size": self.sizes.vocab_size,
                "steps": self.sizes.steps,
                "batch_size": self.sizes.batch_size,
                "max_length": self.sizes.max_length,
            },
            "steps": {name: self.steps[name].as_json() for name in names},
        }
        self.opts.out.mkdir(parents=True, exist_ok=True)
        target = self.opts.out / "gpu-check.json"
        target.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\n== GPU check summary ({'CPU dry run' if self.dry else 'CUDA'})")
        for name in names:
            step = self.steps[name]
            print(f"{name:>10}  {step.status:<8} {step.seconds:6.1f}s  {step.detail}")
        print(f"total {report['seconds']:.0f}s -> {target}")
        failed = [n for n in names if self.steps[n].status in ("failed", "timeout")]
        if self.steps["env"].status == "failed":
            return EXIT_MISSING
        return 1 if failed else 0


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])[-600:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=os.environ.get("GPU_CHECK_DRY_RUN", "") not in ("", "0"),
        help="CPU, tiny sizes (also GPU_CHECK_DRY_RUN=1)",
    )
    parser.add_argument("--out", type=Path, help="where the JSON goes (default bench/results)")
    parser.add_argument("--budget", type=float, default=450.0, help="overall seconds")
    parser.add_argument(
        "--timeout-scale", type=float, default=1.0, help="multiply every step's timeout"
    )
    opts = parser.parse_args()
    if opts.out is None:
        # A dry run must not overwrite the committed GPU figures.
        opts.out = (
            Path(tempfile.gettempdir()) / "kubetune-gpu-check"
            if opts.dry_run
            else BENCH / "results"
        )
    return Check(opts).main()


if __name__ == "__main__":
    sys.exit(main())
