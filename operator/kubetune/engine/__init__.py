"""The search engine: Optuna ask/tell, pruning, budget and completion; pure, no I/O.

Importing it pulls in neither kopf nor kubernetes (tests/engine checks this).
"""

from kubetune.engine.completion import Completion, CompletionReason
from kubetune.engine.engine import SweepEngine, TrialPlan
from kubetune.engine.replay import HistoryError

__all__ = ["Completion", "CompletionReason", "HistoryError", "SweepEngine", "TrialPlan"]
