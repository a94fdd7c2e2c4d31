"""What a trial has measured so far: eval history, best value, final metrics -> TrialResult."""

import math
import time
from dataclasses import dataclass, field

from kubetune.trial_result import BestValue, TrialOutcome, TrialResult

# Metrics where larger is better; everything else is minimised.
_MAXIMISED = frozenset({"eval_accuracy"})


@dataclass
class Progress:
    best_metric: str = "eval_loss"
    started: float = field(default_factory=time.monotonic)
    step: int = 0
    latest: dict[str, float] = field(default_factory=dict)
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    best: BestValue | None = None
    adapter_path: str | None = None
    resumed_from: int | None = None  # the checkpoint step this attempt started at

    def record_train(self, **values: float) -> None:
        self.latest.update(values)

    def record_eval(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            if math.isnan(value):
                continue
            self.latest[name] = value
            self.history.setdefault(name, []).append((step, value))
            if name == self.best_metric and self._better(value):
                self.best = BestValue(metric=name, value=value, step=step)

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.best_metric in _MAXIMISED:
            return value > self.best.value
        return value < self.best.value

    def result(self, status: TrialOutcome, reason: str | None = None) -> TrialResult:
        return TrialResult(
            status=status,
            reason=reason,
            metrics={k: v for k, v in self.latest.items() if math.isfinite(v)},
            best=self.best,
            intermediate=self.history,
            steps=self.step,
            wall_seconds=round(time.monotonic() - self.started, 3),
            adapter_path=self.adapter_path,
            resumed_from=self.resumed_from,
        )
