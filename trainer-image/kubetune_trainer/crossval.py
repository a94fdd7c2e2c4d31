"""k-fold cross-validation: one short training per fold, reported as mean and spread.

For small datasets, where one eval split is too noisy to rank hyperparameters by.
"""

import statistics

from kubetune_trainer.config import RunConfig
from kubetune_trainer.data import Splits, folds
from kubetune_trainer.log import log
from kubetune_trainer.metrics import TrainerMetrics
from kubetune_trainer.modeling import load_model
from kubetune_trainer.progress import Progress
from kubetune_trainer.stopping import StopFlag
from kubetune_trainer.training import Run, seed_everything


def cross_validate(
    config: RunConfig, splits: Splits, metrics: TrainerMetrics, progress: Progress, stop: StopFlag
) -> None:
    """Train a fresh model on each fold; progress gets the folds' mean eval values.

    Each fold's final eval values go to progress.intermediate under <metric>_fold
    ([fold, value] pairs); the metrics hold the mean and, as <metric>_std, the spread.
    Raises Stopped or TrainingFailed like a single run.
    """
    k = config.args.num_folds or 2
    finals: dict[str, list[float]] = {}
    for index, (train, held) in enumerate(folds(splits.train, k)):
        seed_everything(config.args.seed)
        loaded = load_model(
            config.trainer.model, config.trainer.method, config.args, config.cache_dir, stop
        )
        fold_progress = Progress(best_metric=progress.best_metric)
        run = Run(
            config,
            loaded,
            Splits(train, held, f"{splits.source} fold {index + 1}/{k}"),
            metrics,
            fold_progress,
            stop,
            fold=(index, k),
        )
        try:
            run.train()
        finally:
            progress.step += fold_progress.step
            tokens = progress.latest.get("train_tokens", 0.0)
            progress.record_train(**fold_progress.latest)
            progress.record_train(
                train_tokens=tokens + fold_progress.latest.get("train_tokens", 0.0)
            )
        for name, points in fold_progress.history.items():
            finals.setdefault(name, []).append(points[-1][1])
            progress.history.setdefault(f"{name}_fold", []).append((index, points[-1][1]))
        log.info(
            f"fold {index + 1}/{k}: " + " ".join(f"{n} {v[-1]:.4f}" for n, v in finals.items())
        )
    means = {name: statistics.fmean(values) for name, values in finals.items()}
    progress.record_eval(progress.step, means)
    for name, values in finals.items():
        progress.record_train(**{f"{name}_std": statistics.pstdev(values)})
    metrics.report(means)
    metrics.eval_step.set(progress.step)
