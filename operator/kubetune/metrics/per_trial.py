"""Gathering one answer per trial, where one trial's failure must not fail the others."""

import logging
from collections.abc import Sequence

from kubetune.metrics.types import MetricsError, TrialReading, TrialTarget

log = logging.getLogger(__name__)


def readings_by_trial(
    targets: Sequence[TrialTarget], answers: Sequence[object], what: str
) -> dict[str, TrialReading]:
    """The readings among answers (from asyncio.gather(..., return_exceptions=True)).

    A trial that answered with a MetricsError is left out quietly (not up yet, nothing
    reported); any other exception is a bug, logged and left out, so one trial's page or
    log never aborts the sweep's pass. Cancellation and the like are raised again.
    """
    found: dict[str, TrialReading] = {}
    for target, answer in zip(targets, answers, strict=True):
        if isinstance(answer, TrialReading):
            found[target.name] = answer
        elif isinstance(answer, MetricsError):
            log.debug("trial %s %s not read: %s", target.name, what, answer)
        elif isinstance(answer, Exception):
            log.warning("trial %s %s not read: %s", target.name, what, type(answer).__name__)
        elif isinstance(answer, BaseException):
            raise answer
    return found
