"""One trial's configuration, resolved from the environment and command-line flags.

Precedence: flags > environment > the trainer block. The effective training
arguments are the trainer block's `args` overridden by the trial's parameters.
Torch-free, like the argument schema (kubetune.spec.training_args).
"""

import argparse
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kubetune import KIND, conventions
from kubetune.spec import TrainerSpec
from kubetune.spec.errors import describe
from kubetune.spec.training_args import TrainingArguments, describe_errors, parse_args
from kubetune_trainer.errors import ConfigError

DEFAULT_SCRAPE_WAIT_SECONDS = 15.0
DEFAULT_OUTPUT_DIR = "kubetune-output"


@dataclass(frozen=True)
class Identity:
    """Who this trial is: the labels on every metric series."""

    sweep: str = ""
    trial: str = ""
    namespace: str = ""

    def labels(self) -> dict[str, str]:
        return {"sweep": self.sweep, "trial": self.trial, "namespace": self.namespace}


@dataclass(frozen=True)
class RunConfig:
    trainer: TrainerSpec
    args: TrainingArguments
    params: dict[str, Any] = field(default_factory=dict)
    identity: Identity = field(default_factory=Identity)
    metrics_port: int | None = conventions.DEFAULT_METRICS_PORT  # None: no server
    metrics_addr: str = "0.0.0.0"
    output_dir: Path = Path(DEFAULT_OUTPUT_DIR)
    termination_log: Path = Path(conventions.DEFAULT_TERMINATION_LOG)
    scrape_wait_seconds: float = DEFAULT_SCRAPE_WAIT_SECONDS
    cache_dir: Path = field(default_factory=lambda: default_cache_dir({}))
    # KUBETUNE_ATTEMPT, stamped on the result so the launcher takes it for this launch only.
    attempt: str | None = None

    @property
    def max_steps(self) -> int:
        """Optimizer steps: args.max_steps, else maxSteps (num_train_epochs is resolved
        against the data in training.plan_steps)."""
        return self.args.max_steps or self.trainer.max_steps


def default_cache_dir(env: Mapping[str, str]) -> Path:
    if env.get(conventions.ENV_CACHE_DIR):
        return Path(env[conventions.ENV_CACHE_DIR])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubetune"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kubetune_trainer",
        description="Run one kubetune fine-tuning trial. Every flag has an environment "
        "equivalent (see trainer-image/README.md); flags win.",
    )
    add = parser.add_argument
    add("--config", metavar="FILE", help="The trainer block as JSON or YAML (camelCase keys).")
    add("--model", help="Hub id, local path, or tiny.")
    add("--method", help="lora | qlora | full.")
    add("--mode", help="train | generate.")
    add("--adapter", help="generate mode: adapter or model directory to evaluate.")
    add("--dataset", metavar="PATH", help="synthetic:<task>, a .jsonl/.txt file, or a hub id.")
    add("--max-steps", type=int, help="Optimizer steps.")
    add("--eval-every", type=int, help="Evaluate every N steps.")
    add(
        "--checkpoint-every",
        type=int,
        help="Checkpoint every N steps (0: never); default: at each evaluation.",
    )
    add(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="A trial parameter (value read as JSON, else as a string); repeatable.",
    )
    add("--params", metavar="JSON", help=f"All trial parameters, like {conventions.ENV_PARAMS}.")
    add("--metrics-port", type=int, help="0: any free port; -1: no metrics server.")
    add("--metrics-addr", help="Bind address of the metrics server.")
    add("--output-dir", help="Where the adapter and result.json go.")
    add("--termination-log", help="Termination message path.")
    add("--scrape-wait", type=float, metavar="SECONDS", help="Wait for a final scrape.")
    return parser


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(where, f"is not valid JSON ({error.msg} at char {error.pos})") from None
    if not isinstance(value, dict):
        raise ConfigError(where, f"must be a JSON object, got {type(value).__name__}")
    return value


def _parse_flag_params(pairs: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise ConfigError("--param", f"must look like NAME=VALUE, got {pair!r}")
        try:
            params[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[name.strip()] = raw
    return params


def _trainer_of(block: dict[str, Any]) -> dict[str, Any]:
    """A whole HyperparameterSweep manifest works too: its spec.trainer is the block."""
    if block.get("kind") != KIND:
        return block
    trainer = (block.get("spec") or {}).get("trainer")
    if not isinstance(trainer, dict):
        raise ConfigError("--config", f"this {KIND} has no spec.trainer block")
    return trainer


def _load_trainer_block(flags: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    if flags.config:
        path = Path(flags.config)
        try:
            text = path.read_text()
        except OSError as error:
            raise ConfigError("--config", f"cannot read {path}: {error.strerror}") from None
        if path.suffix in (".yaml", ".yml"):
            import yaml

            try:
                block = yaml.safe_load(text) or {}
            except yaml.YAMLError as error:
                raise ConfigError("--config", f"is not valid YAML: {error}") from None
            if not isinstance(block, dict):
                raise ConfigError("--config", "must hold a mapping (the trainer block)")
        else:
            block = _json_object(text, "--config")
        return _trainer_of(block)
    if env.get(conventions.ENV_TRAINER_CONFIG):
        return _json_object(env[conventions.ENV_TRAINER_CONFIG], conventions.ENV_TRAINER_CONFIG)
    return {}


def _trainer_spec(block: dict[str, Any], flags: argparse.Namespace) -> TrainerSpec:
    overrides = {
        "model": flags.model,
        "method": flags.method,
        "mode": flags.mode,
        "adapter": flags.adapter,
        "maxSteps": flags.max_steps,
        "evalEvery": flags.eval_every,
        "checkpointEvery": flags.checkpoint_every,
    }
    block = dict(block)
    for key, value in overrides.items():
        if value is not None:
            block[key] = value
    if flags.dataset is not None:
        block["dataset"] = {**(block.get("dataset") or {}), "path": flags.dataset}
    try:
        return TrainerSpec.model_validate(block)
    except ValidationError as error:
        problem = describe(error)[0]
        raise ConfigError("trainer", problem) from None


def _training_args(spec: TrainerSpec, params: dict[str, Any]) -> TrainingArguments:
    merged = {**spec.args, **params}
    try:
        return parse_args(merged)
    except ValidationError as error:
        problem = describe_errors(error)[0]
        name = problem.split(":", 1)[0]
        where = "parameters" if name in params else "trainer.args"
        raise ConfigError(f"{where}.{name}", problem.split(": ", 1)[1]) from None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ConfigError(name, f"must be finite, got {raw!r}")
    return value


def _metrics_port(flags: argparse.Namespace, env: Mapping[str, str]) -> int | None:
    if flags.metrics_port is not None:
        port = flags.metrics_port
        where = "--metrics-port"
    else:
        raw = env.get(conventions.ENV_METRICS_PORT, "")
        where = conventions.ENV_METRICS_PORT
        if not raw:
            return conventions.DEFAULT_METRICS_PORT
        if not raw.lstrip("-").isdigit():
            raise ConfigError(where, f"must be an integer port, got {raw!r}")
        port = int(raw)
    if port < 0:
        return None
    if port > 65535:
        raise ConfigError(where, f"must be <= 65535, got {port}")
    return port


def launcher_output_dir(env: Mapping[str, str]) -> Path | None:
    """The trial folder the launcher chose (KUBETUNE_OUTPUT_DIR), taken verbatim; None if unset."""
    raw = env.get(conventions.ENV_OUTPUT_DIR)
    return Path(raw) if raw else None


def _output_dir(spec: TrainerSpec, env: Mapping[str, str], identity: Identity) -> Path:
    chosen = launcher_output_dir(env)
    if chosen is not None:
        return chosen
    # A shared outputDir gets one folder per trial.
    base = Path(spec.output_dir) if spec.output_dir is not None else Path(DEFAULT_OUTPUT_DIR)
    return base / (identity.trial or "local")


def termination_log(env: Mapping[str, str], flag: str | None = None) -> Path:
    """Where the result message goes: --termination-log, else the env var, else Kubernetes'."""
    return Path(
        flag or env.get(conventions.ENV_TERMINATION_LOG) or conventions.DEFAULT_TERMINATION_LOG
    )


def resolve(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> RunConfig:
    """The run configuration; raises ConfigError naming the offending field."""
    env = os.environ if env is None else env
    flags = build_parser().parse_args(argv)
    block = _load_trainer_block(flags, env)
    spec = _trainer_spec(block, flags)

    params: dict[str, Any] = {}
    if env.get(conventions.ENV_PARAMS):
        params.update(_json_object(env[conventions.ENV_PARAMS], conventions.ENV_PARAMS))
    if flags.params:
        params.update(_json_object(flags.params, "--params"))
    params.update(_parse_flag_params(flags.param))
    args = _training_args(spec, params)

    identity = Identity(
        sweep=env.get(conventions.ENV_SWEEP, ""),
        trial=env.get(conventions.ENV_TRIAL, ""),
        namespace=env.get(conventions.ENV_NAMESPACE, ""),
    )
    scrape_wait = (
        flags.scrape_wait
        if flags.scrape_wait is not None
        else _number(env, conventions.ENV_SCRAPE_WAIT, DEFAULT_SCRAPE_WAIT_SECONDS)
    )
    if scrape_wait < 0:
        raise ConfigError(conventions.ENV_SCRAPE_WAIT, f"must be >= 0, got {scrape_wait}")
    if spec.mode == "train" and args.from_scratch and spec.method != "full":
        raise ConfigError("trainer.args.from_scratch", "needs method: full (there is no base)")
    return RunConfig(
        trainer=spec,
        args=args,
        params=params,
        identity=identity,
        metrics_port=_metrics_port(flags, env),
        metrics_addr=flags.metrics_addr or env.get(conventions.ENV_METRICS_ADDR) or "0.0.0.0",
        output_dir=Path(flags.output_dir) if flags.output_dir else _output_dir(spec, env, identity),
        termination_log=termination_log(env, flags.termination_log),
        scrape_wait_seconds=scrape_wait,
        cache_dir=default_cache_dir(env),
        attempt=env.get(conventions.ENV_ATTEMPT) or None,
    )
