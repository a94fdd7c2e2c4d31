"""The operator's own metrics: names from metric_names, gauges follow sweeps."""

import socket
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from kubetune import metric_names
from kubetune.operator.metrics import OperatorMetrics
from kubetune.spec import TrialCounts


def _samples(metrics: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_sweep_phases_are_counted_and_forgotten() -> None:
    m = OperatorMetrics()
    m.set_sweep("ns", "a", "Running", TrialCounts(running=2, succeeded=3), best=0.5)
    m.set_sweep("ns", "b", "Running", TrialCounts(), best=None)
    m.set_sweep("ns", "a", "Succeeded", TrialCounts(succeeded=5), best=0.4)
    s = _samples(m)
    assert s[(metric_names.SWEEPS, (("phase", "Running"),))] == 1
    assert s[(metric_names.SWEEPS, (("phase", "Succeeded"),))] == 1
    key = (("namespace", "ns"), ("state", "succeeded"), ("sweep", "a"))
    assert s[(metric_names.TRIALS, key)] == 5
    assert s[(metric_names.SWEEP_BEST_VALUE, (("namespace", "ns"), ("sweep", "a")))] == 0.4
    assert (metric_names.SWEEP_BEST_VALUE, (("namespace", "ns"), ("sweep", "b"))) not in s
    m.set_sweep("ns", "a", "Running", TrialCounts(), best=None, gpu_hours=1.25)
    assert (
        _samples(m)[(metric_names.SWEEP_GPU_HOURS, (("namespace", "ns"), ("sweep", "a")))] == 1.25
    )

    m.forget_sweep("ns", "a")
    m.forget_sweep("ns", "never-seen")
    s = _samples(m)
    assert s[(metric_names.SWEEPS, (("phase", "Succeeded"),))] == 0
    assert not any(name == metric_names.TRIALS and ("sweep", "a") in lbl for name, lbl in s)
    assert not any(name == metric_names.SWEEP_GPU_HOURS for name, _ in s)


def test_histograms_and_errors_use_shared_names() -> None:
    m = OperatorMetrics()
    with m.time_reconcile():
        pass
    m.turnover.observe(0.2)
    m.suggestion.observe(0.01)
    m.error("ApiError")
    m.error("ApiError")
    s = _samples(m)
    assert s[(metric_names.RECONCILE_SECONDS + "_count", ())] == 1
    assert s[(metric_names.TRIAL_TURNOVER_SECONDS + "_count", ())] == 1
    assert s[(metric_names.SUGGESTION_SECONDS + "_count", ())] == 1
    assert s[(metric_names.RECONCILE_ERRORS, (("reason", "ApiError"),))] == 2


def test_serves_metrics_over_http() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    m = OperatorMetrics()
    m.set_sweep("ns", "a", "Running", TrialCounts(running=1), best=None)
    m.serve(port, addr="127.0.0.1")
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    names = {f.name for f in text_string_to_metric_families(body)}
    # Counter families drop the _total suffix in the parsed form.
    assert {
        metric_names.SWEEPS,
        metric_names.TRIALS,
        metric_names.TRIAL_TURNOVER_SECONDS,
        metric_names.RECONCILE_SECONDS,
        metric_names.RECONCILE_ERRORS.removesuffix("_total"),
        metric_names.SUGGESTION_SECONDS,
    } <= names
