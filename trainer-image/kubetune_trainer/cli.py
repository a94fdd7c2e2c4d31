"""`python -m kubetune_trainer`: one trial from configuration to result and exit status.

Exit statuses (kubetune.conventions): EXIT_OK, EXIT_FAILED (NaN, divergence, any
training error), EXIT_CONFIG_ERROR (one line naming the field and the rule, no
traceback), EXIT_STOPPED (SIGTERM: stopped at the next step, partial result written).
"""

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

from kubetune import conventions
from kubetune.trial_result import TrialOutcome, TrialResult
from kubetune_trainer import artifacts, distributed, redaction
from kubetune_trainer.config import (
    RunConfig,
    launcher_output_dir,
    resolve,
    termination_log,
)
from kubetune_trainer.distributed import World
from kubetune_trainer.errors import ConfigError, Stopped, TrainingFailed
from kubetune_trainer.log import log
from kubetune_trainer.metrics import MetricsServer, TrainerMetrics
from kubetune_trainer.progress import Progress
from kubetune_trainer.result import write_result
from kubetune_trainer.stopping import StopFlag

# How often the final wait looks at the stop flag.
_WAIT_SLICE_SECONDS = 0.2


def _config_failure(error: ConfigError) -> int:
    """Report a configuration error where the launcher will look, without a traceback."""
    log.info(f"config error: {error}")
    result = TrialResult(
        status="failed",
        reason=f"config error: {error}",
        attempt=os.environ.get(conventions.ENV_ATTEMPT) or None,
    )
    output = launcher_output_dir(os.environ)
    if os.environ.get(conventions.ENV_RANK, "0") != "0":
        return conventions.EXIT_CONFIG_ERROR  # rank 0 reports it, the same for every rank
    # Outside a pod there is usually no termination log; stderr has the message.
    with contextlib.suppress(OSError):
        termination_log(os.environ).write_text(redaction.active().result(result).to_message())
    if output is not None:
        write_result(result, output, Path(os.devnull))
    return conventions.EXIT_CONFIG_ERROR


def _wait_for_scrape(metrics: TrainerMetrics, seconds: float, stop: StopFlag) -> None:
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            log.info(
                f"no scrape of the final metrics within {seconds:g}s; the result file has them"
            )
            return
        if metrics.wait_for_final_scrape(min(left, _WAIT_SLICE_SECONDS)):
            return


def quiet_libraries() -> None:
    """No progress bars or deprecation chatter from the libraries in a trial's log."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="peft")


def _check_world(config: RunConfig, world: World) -> None:
    """What several processes cannot do, before any model is loaded."""
    if config.args.fsdp and config.trainer.method != "full":
        raise ConfigError("fsdp", "shards full fine-tunes only (method full)")
    if not world.distributed:
        return
    if config.trainer.mode == "generate":
        raise ConfigError("trainer.gpus", "more than one process is for mode train only")
    if config.args.num_folds:
        raise ConfigError("num_folds", "cross-validation runs on one process (trainer.gpus 1)")
    world.shard_size(config.args.per_device_train_batch_size)


def _run_trial(
    config: RunConfig, metrics: TrainerMetrics, progress: Progress, stop: StopFlag
) -> None:
    """Train (or generate) and save; raises Stopped, TrainingFailed or ConfigError."""
    from kubetune_trainer import modeling
    from kubetune_trainer.data import load_splits
    from kubetune_trainer.generate import run_generate
    from kubetune_trainer.training import Run, seed_everything

    world = distributed.world_from_env()
    _check_world(config, world)
    distributed.init(world)
    seed_everything(config.args.seed)
    spec = config.trainer
    if spec.mode == "generate":
        splits = load_splits(spec.dataset)
        loaded = modeling.load_for_generation(spec.model, spec.adapter, config.cache_dir, stop)
        run_generate(config, loaded, splits, metrics, progress, stop)
        return
    modeling.check_method(spec.method)  # before any model is built or downloaded
    splits = load_splits(spec.dataset)
    if config.args.num_folds:
        from kubetune_trainer.crossval import cross_validate

        cross_validate(config, splits, metrics, progress, stop)
        return
    loaded = modeling.load_model(spec.model, spec.method, config.args, config.cache_dir, stop)
    trial = Run(config, loaded, splits, metrics, progress, stop)
    try:
        trial.train()
    except Stopped:
        if world.is_main or trial.sharded:  # sharded: a collective, rank 0 writes
            trial.checkpoint_on_stop()  # first: a preempted trial resumes from it
        if progress.step > 0 and (world.is_main or trial.sharded):
            trial.save()  # a pruned trial's adapter may still be of use
        raise
    if world.is_main or trial.sharded:  # sharded: every rank gathers what rank 0 saves
        trial.save()


def _outcome(error: Exception | None, stop: StopFlag) -> tuple[TrialOutcome, str | None, int]:
    """Result status, reason and exit status for how the trial ended."""
    if error is None:
        return "succeeded", None, conventions.EXIT_OK
    if isinstance(error, Stopped):
        return "stopped", f"stopped by {stop.signal_name or 'request'}", conventions.EXIT_STOPPED
    if isinstance(error, ConfigError):
        log.info(f"config error: {error}")
        return "failed", f"config error: {error}", conventions.EXIT_CONFIG_ERROR
    if isinstance(error, TrainingFailed):
        log.info(f"failed: {error}")
        return "failed", str(error), conventions.EXIT_FAILED
    # Anything else: the reason goes in the result, the traceback in the log.
    reason = f"{type(error).__name__}: {error}"
    log.error(f"failed: {reason}", exc_info=error)
    return "failed", reason, conventions.EXIT_FAILED


def _execute(config: RunConfig, stop: StopFlag) -> int:
    if config.trainer.model == conventions.TINY_MODEL:
        # Before huggingface_hub is imported: it reads the setting once, at import.
        os.environ["HF_HUB_OFFLINE"] = "1"
    # Heavy imports only now: a config error above costs no torch import.
    import torch

    quiet_libraries()
    if config.args.num_threads:
        torch.set_num_threads(config.args.num_threads)
    world = distributed.world_from_env()
    metrics = TrainerMetrics(config.identity, config.params)
    server = None
    # Only rank 0 is the trial to the outside: the others never bind the metrics port.
    if config.metrics_port is not None and world.is_main:
        try:
            server = MetricsServer(metrics, config.metrics_addr, config.metrics_port).start()
        except OSError as error:
            raise ConfigError(
                conventions.ENV_METRICS_PORT,
                f"cannot serve on {config.metrics_addr}:{config.metrics_port}: {error.strerror}",
            ) from None
    generating = config.trainer.mode == "generate"
    progress = Progress(best_metric="eval_accuracy" if generating else config.args.best_metric)
    failure: Exception | None = None
    try:
        _run_trial(config, metrics, progress, stop)
    except Exception as error:  # every ending is reported; _outcome sorts them
        failure = error
    status, reason, code = _outcome(failure, stop)
    if not world.is_main:
        # Its log has what went wrong; torchrun ends the others when a rank fails.
        distributed.leave(code)
    if status != "stopped" and config.trainer.mode == "train":
        artifacts.tidy(config)  # a stopped trial may be resumed from its checkpoint

    result = progress.result(status, reason)
    result.attempt = config.attempt
    write_result(result, config.output_dir, config.termination_log)
    metrics.mark_final()
    finals = " ".join(
        f"{k} {v:.4g}" for k, v in result.metrics.items() if k.startswith(("eval_", "train_loss"))
    )
    where = config.output_dir / conventions.RESULT_FILE
    log.info(f"{status} after {result.steps} steps: {finals} -> {where}")
    if server is not None:
        # A stopped trial was pruned or deleted: nobody waits for its last values.
        if code in (conventions.EXIT_OK, conventions.EXIT_FAILED):
            _wait_for_scrape(metrics, config.scrape_wait_seconds, stop)
        server.stop()
    if world.distributed:
        distributed.leave(code)
    return code


def run(argv: Sequence[str] | None = None) -> int:
    # First: a secret must not reach even a config error's message.
    redaction.install(os.environ)
    stop = StopFlag().install()
    try:
        config = resolve(argv)
        return _execute(config, stop)
    except ConfigError as error:
        return _config_failure(error)
