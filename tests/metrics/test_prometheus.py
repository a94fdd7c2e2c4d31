import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from kubetune.metrics import (
    MetricsUnavailable,
    PrometheusSource,
    QueryError,
    TrialReading,
    TrialTarget,
    trial_selector,
)
from tests.metrics.exporter import TrialExporter, free_port, trial_exporter
from tests.metrics.prometheus_server import prometheus_server

pytestmark = pytest.mark.slow

T = TypeVar("T")
TRIALS = [TrialTarget("demo-t0000"), TrialTarget("demo-t0001"), TrialTarget("demo-t0002")]


@pytest.fixture(scope="module")
def exporter() -> Iterator[TrialExporter]:
    trials = [t.name for t in TRIALS] + ["other-t0000"]
    with trial_exporter(namespace="ns", trials=trials) as exp:
        yield exp


@pytest.fixture(scope="module")
def prometheus_url(
    tmp_path_factory: pytest.TempPathFactory, exporter: TrialExporter
) -> Iterator[str]:
    with prometheus_server(tmp_path_factory.mktemp("prometheus"), [exporter.scrape_job()]) as url:
        yield url


def run_with(url: str, use: Callable[[PrometheusSource], Awaitable[T]], **kwargs: object) -> T:
    async def go() -> T:
        source = PrometheusSource(url, **kwargs)  # type: ignore[arg-type]
        try:
            return await use(source)
        finally:
            await source.aclose()

    return asyncio.run(go())


def wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.3)


def scraped(url: str, promql: str, expected: float) -> Callable[[], bool]:
    def check() -> bool:
        found = run_with(url, lambda s: s.query(promql))
        return bool(found) and all(v == expected for _, v in found)

    return check


def test_collect_reads_every_trial_in_one_query_per_metric(
    exporter: TrialExporter, prometheus_url: str
) -> None:
    exporter.set("demo-t0000", eval_loss=2.0, eval_step=10, step=12, done=0)
    exporter.set("demo-t0001", eval_loss=1.5, eval_step=10, step=11, done=1)
    exporter.set("other-t0000", eval_loss=9.0)  # same namespace, another sweep
    # Each trial is its own target, scraped on its own schedule: wait for both.
    wait_until(scraped(prometheus_url, trial_selector("step", "ns", "demo", "demo-t0000"), 12))
    wait_until(scraped(prometheus_url, trial_selector("step", "ns", "demo", "demo-t0001"), 11))

    found: dict[str, TrialReading] = run_with(
        prometheus_url, lambda s: s.collect("ns", "demo", TRIALS), metrics=["eval_loss"]
    )
    assert set(found) == {"demo-t0000", "demo-t0001"}  # t0002 has no series: absent
    assert found["demo-t0000"].value("eval_loss") == 2.0
    assert (found["demo-t0000"].step, found["demo-t0000"].eval_step) == (12, 10)
    assert found["demo-t0001"].done and not found["demo-t0000"].done


def test_custom_query_templates(exporter: TrialExporter, prometheus_url: str) -> None:
    exporter.set("demo-t0000", eval_accuracy=0.25)
    exporter.set("demo-t0001", eval_accuracy=0.5)
    for trial, accuracy in (("demo-t0000", 0.25), ("demo-t0001", 0.5)):
        wait_until(
            scraped(prometheus_url, trial_selector("eval_accuracy", "ns", "demo", trial), accuracy)
        )
    per_trial = (
        'kubetune_trial_eval_accuracy{namespace="{namespace}",sweep="{sweep}",trial="{trial}"}'
        " * 100"
    )
    found = run_with(
        prometheus_url,
        lambda s: s.collect("ns", "demo", TRIALS),
        metrics=["score"],
        queries={"score": per_trial},
    )
    assert found["demo-t0000"].value("score") == 25.0
    assert found["demo-t0001"].value("score") == 50.0

    whole_sweep = 'kubetune_trial_eval_accuracy{sweep="{sweep}"} * 2'
    found = run_with(
        prometheus_url,
        lambda s: s.collect("ns", "demo", TRIALS),
        metrics=["score"],
        queries={"score": whole_sweep},
    )
    assert found["demo-t0001"].value("score") == 1.0


def test_eval_history_pairs_values_with_eval_step(
    exporter: TrialExporter, prometheus_url: str
) -> None:
    trial = "demo-t0002"
    start = time.time() - 1
    for eval_step, loss in [(10, 3.0), (20, 2.5), (30, 2.25)]:
        exporter.set(trial, eval_loss=loss, eval_step=eval_step, step=eval_step + 3)
        wait_until(
            scraped(prometheus_url, trial_selector("eval_step", "ns", "demo", trial), eval_step)
        )
        wait_until(scraped(prometheus_url, trial_selector("eval_loss", "ns", "demo", trial), loss))
        time.sleep(1.2)  # let a second scrape land so the range query sees the pair settled
    end = time.time() + 1

    history = run_with(
        prometheus_url,
        lambda s: s.eval_history("ns", "demo", trial, "eval_loss", start, end, step=0.5),
    )
    assert history == [(10, 3.0), (20, 2.5), (30, 2.25)]


def test_unreachable_prometheus_is_not_an_absent_series() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MetricsUnavailable, match="unreachable"):
        run_with(url, lambda s: s.collect("ns", "demo", TRIALS), timeout=1.0)


def test_bad_promql_is_a_query_error(prometheus_url: str) -> None:
    with pytest.raises(QueryError, match="bad_data"):
        run_with(prometheus_url, lambda s: s.query("sum(kubetune_trial_step"))


def test_absent_series_is_empty_not_an_error(prometheus_url: str) -> None:
    found = run_with(prometheus_url, lambda s: s.collect("ns", "no-such-sweep", TRIALS))
    assert found == {}


def test_for_objectives_takes_metrics_and_custom_queries() -> None:
    from kubetune.spec import Objective

    source = PrometheusSource.for_objectives(
        "http://prometheus:9090/",
        [
            Objective(metric="eval_loss"),
            Objective(metric="score", query='my_score{trial="{trial}"}'),
        ],
    )
    assert source.url == "http://prometheus:9090"
    assert source.metrics == ["eval_loss", "score"]
    assert source.queries == {"score": 'my_score{trial="{trial}"}'}
    asyncio.run(source.aclose())
