"""The trial's /metrics: declared names only, trial labels, scrape counting for the final wait."""

import threading
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from kubetune import metric_names as names
from kubetune_trainer.config import Identity
from kubetune_trainer.metrics import MetricsServer, TrainerMetrics, info_labels

IDENTITY = Identity(sweep="demo", trial="demo-t0001", namespace="ml")
DECLARED = {*names.TRAINER_GAUGES, names.TOKENS_TOTAL, names.TRIAL_INFO}


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    series: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append((sample.labels, sample.value))
    return series


def test_series_use_declared_names_and_trial_labels() -> None:
    metrics = TrainerMetrics(IDENTITY, {"learning_rate": 0.0001, "lora_r": 16, "packing": True})
    metrics.train_loss.set(1.5)
    metrics.tokens.inc(100)
    server = MetricsServer(metrics, "127.0.0.1", 0).start()
    try:
        series = scrape(server.port)
    finally:
        server.stop()
    assert set(series) <= DECLARED, set(series) - DECLARED
    # No eval has run: no eval sample at all, rather than a 0 a pruner would read as perfect.
    assert names.EVAL_LOSS not in series and names.EVAL_STEP not in series
    assert series[names.STEP] == [(IDENTITY.labels(), 0.0)]
    assert series[names.TRIAL_DONE] == [(IDENTITY.labels(), 0.0)]
    assert series[names.TRAIN_LOSS] == [(IDENTITY.labels(), 1.5)]
    assert series[names.TOKENS_TOTAL] == [(IDENTITY.labels(), 100.0)]
    [(info, value)] = series[names.TRIAL_INFO]
    assert value == 1
    assert info == {
        **IDENTITY.labels(),
        "learning_rate": "0.0001",
        "lora_r": "16",
        "packing": "true",
    }
    for name, samples in series.items():
        if name != names.TRIAL_INFO:
            assert all(labels == IDENTITY.labels() for labels, _ in samples), name


def test_info_labels_are_valid_prometheus_names() -> None:
    assert info_labels({"trial": "x", "1x": 2, "a-b": 0.5}) == {
        "a_b": "0.5",
        "p_1x": "2",
        "param_trial": "x",
    }


def test_final_wait_needs_a_scrape_after_the_final_update() -> None:
    metrics = TrainerMetrics(IDENTITY, {})
    server = MetricsServer(metrics, "127.0.0.1", 0).start()
    try:
        scrape(server.port)  # an earlier scrape does not count
        metrics.mark_final()
        assert not metrics.wait_for_final_scrape(0.2)
        # Nor does one rendered before the final update but sent after it.
        metrics.count_scrape(rendered_after_final=False)
        assert not metrics.wait_for_final_scrape(0.1)
        timer = threading.Timer(0.3, scrape, args=(server.port,))
        timer.start()
        assert metrics.wait_for_final_scrape(10)
        timer.join()
        assert scrape(server.port)[names.TRIAL_DONE] == [(IDENTITY.labels(), 1.0)]
    finally:
        server.stop()


def test_report_sets_exactly_the_metrics_objectives_may_name() -> None:
    # metric_names.TRAINER_OBJECTIVES is what `kubetune validate` accepts as a trainer sweep's
    # objective; report() is how the trainer sets those gauges, so both use one list.
    reportable = {n for mode in names.TRAINER_OBJECTIVES for n in names.trainer_objectives(mode)}
    metrics = TrainerMetrics(IDENTITY, {})
    metrics.report({name: float(i) for i, name in enumerate(sorted(reportable))})
    server = MetricsServer(metrics, "127.0.0.1", 0).start()
    try:
        series = scrape(server.port)
    finally:
        server.stop()
    for i, name in enumerate(sorted(reportable)):
        assert series[names.trial_metric(name)] == [(IDENTITY.labels(), float(i))], name
    try:
        metrics.report({"eval_los": 1.0})
    except KeyError as error:
        assert "TRAINER_OBJECTIVES" in str(error)
    else:
        raise AssertionError("report() took a name objectives may not use")
