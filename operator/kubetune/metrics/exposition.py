"""Parse a trial's /metrics page (Prometheus text format) into TrialReading."""

import math

from prometheus_client.parser import text_string_to_metric_families

from kubetune import metric_names
from kubetune.metrics.types import MalformedAnswer, TrialReading, short_name


def parse_exposition(text: str) -> TrialReading:
    """The kubetune_trial_* values on one trial's metrics page.

    NaN marks a value not measured yet (e.g. eval_loss before the first evaluation),
    so it is left out like an absent series. Raises MalformedAnswer, and nothing else, on
    text that is not the Prometheus text format; its message never quotes the text.
    """
    try:
        return _parse(text)
    except Exception as error:  # a third-party parser fed by a trial: nothing may escape
        raise MalformedAnswer(f"not a Prometheus metrics page ({type(error).__name__})") from error


def _parse(text: str) -> TrialReading:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if not name.startswith(metric_names.TRIAL_PREFIX) or name == metric_names.TRIAL_INFO:
                continue
            # Counters come with <name>_created (a timestamp, its own family in the
            # text format); histograms with _bucket/_sum/_count: keep plain values only.
            if name not in (family.name, family.name + "_total") or name.endswith("_created"):
                continue
            if math.isnan(sample.value):
                continue
            values[short_name(name)] = float(sample.value)
    return TrialReading(values=values)
