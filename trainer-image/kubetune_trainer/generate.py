"""The generate mode: score decoding settings of a trained model on the eval split, no training."""

from kubetune_trainer.config import RunConfig
from kubetune_trainer.data import Splits
from kubetune_trainer.errors import ConfigError, Stopped
from kubetune_trainer.evaluation import (
    Decoding,
    answer_budget,
    autocast,
    exact_match,
    generate_answers,
)
from kubetune_trainer.log import log
from kubetune_trainer.metrics import TrainerMetrics
from kubetune_trainer.modeling import LoadedModel
from kubetune_trainer.progress import Progress
from kubetune_trainer.stopping import StopFlag


def decoding_from(run: RunConfig, budget: int) -> Decoding:
    args = run.args
    return Decoding(
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=args.top_k,
        repetition_penalty=args.repetition_penalty,
        frequency_penalty=args.frequency_penalty,
        presence_penalty=args.presence_penalty,
        max_new_tokens=args.max_new_tokens or budget,
        num_samples=args.num_samples,
    )


def run_generate(
    run: RunConfig,
    loaded: LoadedModel,
    splits: Splits,
    metrics: TrainerMetrics,
    progress: Progress,
    stop: StopFlag,
) -> None:
    """Exact-match accuracy of generated answers; the objective is eval_accuracy."""
    if not splits.has_answers:
        raise ConfigError(
            "trainer.dataset",
            "generate mode scores answers, but the eval split has no prompt/response pairs",
        )
    sample = splits.eval[: run.args.eval_max_samples]
    decoding = decoding_from(run, answer_budget(sample, loaded.tokenizer))
    metrics.max_steps.set(0)
    log.info(f"generate: {len(sample)} eval prompts, {decoding}")
    with autocast(loaded.device, loaded.autocast_dtype):
        answers = generate_answers(
            loaded.model,
            loaded.tokenizer,
            [e.prompt for e in sample],
            decoding,
            run.args.per_device_eval_batch_size,
            loaded.device,
            stop,
        )
    if stop():
        raise Stopped()
    accuracy = exact_match(answers, sample)
    metrics.report({"eval_accuracy": accuracy})
    metrics.eval_step.set(0)
    progress.record_eval(0, {"eval_accuracy": accuracy})
    log.info(f"generate: eval_accuracy {accuracy:.4f}")
