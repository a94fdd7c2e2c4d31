import asyncio
import math

import pytest

from kubetune.metrics import (
    MetricsError,
    MetricsUnavailable,
    ScrapeSource,
    TrialReading,
    TrialTarget,
    parse_exposition,
)
from tests.metrics.exporter import free_port, trial_exporter


def test_parse_keeps_trial_series_only_and_drops_nan() -> None:
    text = (
        "# TYPE kubetune_trial_tokens counter\n"
        'kubetune_trial_tokens_total{trial="t"} 12.0\n'
        'kubetune_trial_tokens_created{trial="t"} 1.7e9\n'
        "# TYPE kubetune_trial_eval_loss gauge\n"
        'kubetune_trial_eval_loss{trial="t"} NaN\n'
        "# TYPE kubetune_trial_step gauge\n"
        'kubetune_trial_step{trial="t"} 30\n'
        "# TYPE kubetune_trial_info gauge\n"
        'kubetune_trial_info{trial="t",learning_rate="0.1"} 1\n'
        "# TYPE process_cpu_seconds counter\n"
        "process_cpu_seconds_total 3.0\n"
    )
    metrics = parse_exposition(text)
    assert dict(metrics.values) == {"tokens_total": 12.0, "step": 30.0}
    assert metrics.step == 30
    assert metrics.eval_step is None
    assert metrics.value("eval_loss") is None
    assert not metrics.done


def test_trial_metrics_accessors() -> None:
    metrics = TrialReading({"eval_loss": 1.5, "eval_step": 20.0, "step": 25.0, "done": 1.0})
    assert metrics.value("kubetune_trial_eval_loss") == 1.5
    assert (metrics.step, metrics.eval_step, metrics.done) == (25, 20, True)
    assert TrialReading({"step": math.inf}).step is None


def test_evaluation_pairs_value_and_step_and_ignores_gauges_at_zero() -> None:
    assert TrialReading({"eval_loss": 1.5, "eval_step": 20.0, "step": 25.0}).evaluation(
        "eval_loss"
    ) == (20, 1.5)
    # Trainers without eval_step: the training step.
    assert TrialReading({"score": 0.5, "step": 7.0}).evaluation("score") == (7, 0.5)
    # Freshly registered gauges read 0 before the first evaluation.
    assert TrialReading({"eval_loss": 0.0, "eval_step": 0.0}).evaluation("eval_loss") is None
    assert TrialReading({"eval_step": 10.0}).evaluation("eval_loss") is None


def test_scrape_reads_a_live_exporter() -> None:
    with trial_exporter() as exporter:
        exporter.set("demo-t0000", eval_loss=2.5, eval_step=10, step=12, done=0)
        exporter.tokens("demo-t0000").inc(640)

        async def read() -> TrialReading:
            source = ScrapeSource()
            try:
                return await source.fetch("127.0.0.1", exporter.port("demo-t0000"))
            finally:
                await source.aclose()

        metrics = asyncio.run(read())
    assert metrics.value("eval_loss") == 2.5
    assert metrics.eval_step == 10
    assert metrics.step == 12
    assert metrics.value("tokens_total") == 640
    assert not metrics.done


def test_scrape_unreachable_endpoint_raises_unavailable() -> None:
    async def read() -> None:
        source = ScrapeSource(timeout=1.0)
        try:
            await source.fetch("127.0.0.1", free_port())
        finally:
            await source.aclose()

    with pytest.raises(MetricsUnavailable, match=r"127\.0\.0\.1"):
        asyncio.run(read())


def test_collect_leaves_out_trials_that_do_not_answer() -> None:
    with trial_exporter() as exporter:
        exporter.set("demo-t0000", eval_loss=1.0, eval_step=5)

        async def read() -> dict[str, TrialReading]:
            source = ScrapeSource(timeout=1.0)
            try:
                return await source.collect(
                    "ns",
                    "demo",
                    [
                        TrialTarget("demo-t0000", "127.0.0.1", exporter.port("demo-t0000")),
                        TrialTarget("demo-t0001", "127.0.0.1", free_port()),
                        TrialTarget("demo-t0002"),  # no address yet
                    ],
                )
            finally:
                await source.aclose()

        found = asyncio.run(read())
    assert set(found) == {"demo-t0000"}
    assert found["demo-t0000"].value("eval_loss") == 1.0


def test_scrape_of_a_page_that_is_not_metrics_raises_metrics_error() -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"kubetune_trial_step{unterminated 1\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    async def read() -> None:
        source = ScrapeSource()
        try:
            await source.fetch("127.0.0.1", server.server_address[1])
        finally:
            await source.aclose()

    try:
        with pytest.raises(MetricsError, match="not a Prometheus metrics page"):
            asyncio.run(read())
    finally:
        server.shutdown()
        server.server_close()


def test_a_metrics_page_is_read_under_the_user_names_of_its_series() -> None:
    from kubetune.metrics.exposition import parse_exposition

    page = "kubetune_trial_val_loss 0.25\nkubetune_trial_Validation_accuracy 0.5\n"
    reading = parse_exposition(page)
    assert reading.value("val/loss") == 0.25 and reading.value("Validation-accuracy") == 0.5
