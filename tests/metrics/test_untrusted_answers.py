"""Whatever a Prometheus (or a trial's /metrics) answers, the readers return values or raise a
MetricsError whose message quotes nothing of the answer: never KeyError, TypeError, ValueError.

Each answer comes from a real HTTP server on 127.0.0.1 (tests/metrics/canned_http.py).
"""

import asyncio
import gzip
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest

from kubetune.metrics import (
    MalformedAnswer,
    MetricsError,
    MetricsUnavailable,
    PrometheusSource,
    QueryError,
    ScrapeSource,
    TrialReading,
    TrialTarget,
)
from kubetune.metrics.fetch import MAX_ANSWER_BYTES
from tests.metrics.canned_http import CannedServer, Reply, canned_server

T = TypeVar("T")
SECRET = "hunter2-SECRET"
QUERY = "/api/v1/query"
TRIALS = [TrialTarget("demo-t0000"), TrialTarget("demo-t0001")]
CREDENTIALS = {"apiVersion": "v1", "kind": "Secret", "data": {"token": SECRET}}


@pytest.fixture
def server() -> Iterator[CannedServer]:
    with canned_server() as running:
        yield running


def answer(data: Any) -> bytes:
    return json.dumps({"status": "success", "data": data}).encode()


def vector(*series: Any) -> bytes:
    return answer({"resultType": "vector", "result": list(series)})


def labelled(trial: str, namespace: str = "ns", pod: str | None = None) -> dict[str, str]:
    return {"namespace": namespace, "sweep": "demo", "trial": trial, "pod": pod or trial}


def read(url: str, use: Callable[[PrometheusSource], Awaitable[T]]) -> T:
    async def go() -> T:
        source = PrometheusSource(url, metrics=["eval_loss"], timeout=5.0)
        try:
            return await use(source)
        finally:
            await source.aclose()

    return asyncio.run(go())


def collect(url: str) -> dict[str, TrialReading]:
    return read(url, lambda s: s.collect("ns", "demo", TRIALS))


MALFORMED: dict[str, Reply] = {
    "a range vector for an instant query": Reply(
        answer(
            {
                "resultType": "matrix",
                "result": [{"metric": labelled("demo-t0000"), "values": [[1, "1"]]}],
            }
        )
    ),
    "a string result": Reply(answer({"resultType": "string", "result": [1, SECRET]})),
    "a null value": Reply(vector({"metric": labelled("demo-t0000"), "value": [1.0, None]})),
    "a non-numeric value": Reply(vector({"metric": labelled("demo-t0000"), "value": [1, SECRET]})),
    "a value with underscores": Reply(
        vector({"metric": labelled("demo-t0000"), "value": [1, "1_0"]})
    ),
    "no value": Reply(vector({"metric": labelled("demo-t0000")})),
    "a triple for a pair": Reply(vector({"metric": labelled("demo-t0000"), "value": [1, "1", 2]})),
    "a string timestamp": Reply(vector({"metric": labelled("demo-t0000"), "value": ["1", "1"]})),
    "a boolean timestamp": Reply(vector({"metric": labelled("demo-t0000"), "value": [True, "1"]})),
    "a list for the series": Reply(vector([labelled("demo-t0000"), [1, "1"]])),
    "a list for the labels": Reply(vector({"metric": ["trial", "demo-t0000"], "value": [1, "1"]})),
    "numeric label values": Reply(vector({"metric": {"trial": 5}, "value": [1, "1"]})),
    "an object for the result": Reply(answer({"resultType": "vector", "result": {"a": SECRET}})),
    "a list for data": Reply(answer([SECRET])),
    "a list for the answer": Reply(json.dumps([CREDENTIALS]).encode()),
    "no data": Reply(json.dumps({"status": "success"}).encode()),
    "success without the success status": Reply(
        json.dumps({"status": "error", "error": CREDENTIALS}).encode()
    ),
    "not JSON": Reply(f"<html>{SECRET}</html>".encode(), headers=()),
    "not UTF-8": Reply(b"\xff\xfe" + SECRET.encode()),
    "an empty body": Reply(b""),
    "deeply nested JSON": Reply(b"[" * 200_000 + b"]" * 200_000),
    "a huge body with its length": Reply(b" " * (MAX_ANSWER_BYTES + 1) + vector()),
    "a huge body streamed": Reply(b" " * (MAX_ANSWER_BYTES + 1) + vector(), declare_length=False),
    "a compressed body": Reply(gzip.compress(vector()), headers=(("Content-Encoding", "gzip"),)),
}


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_malformed_answer_is_a_metrics_error_quoting_nothing(
    server: CannedServer, shape: str
) -> None:
    server.replies[QUERY] = MALFORMED[shape]
    with pytest.raises(MalformedAnswer) as raised:
        collect(server.url)
    assert SECRET not in str(raised.value)
    assert str(raised.value).startswith(f"Prometheus at {server.url}")


def test_range_query_checks_its_answer_too(server: CannedServer) -> None:
    server.replies["/api/v1/query_range"] = Reply(vector({"metric": {}, "value": [1, "1"]}))
    with pytest.raises(MalformedAnswer, match="expected a matrix"):
        read(server.url, lambda s: s.query_range("up", 0, 10, 1))
    server.replies["/api/v1/query_range"] = Reply(
        answer({"resultType": "matrix", "result": [{"metric": {}, "values": [[1, None]]}]})
    )
    with pytest.raises(MalformedAnswer, match=r"values\[0\] has no numeric value"):
        read(server.url, lambda s: s.query_range("up", 0, 10, 1))


def test_well_formed_answers_are_read(server: CannedServer) -> None:
    """The validator passes what Prometheus really sends: otherwise the tests above prove nothing."""
    server.replies[QUERY] = Reply(
        vector(
            {"metric": labelled("demo-t0000"), "value": [1.5, "0.25"]},
            {"metric": labelled("demo-t0001"), "value": [1.5, "NaN"]},
        )
    )
    found = collect(server.url)
    assert {t: r.value("eval_loss") for t, r in found.items()} == {"demo-t0000": 0.25}
    server.replies[QUERY] = Reply(answer({"resultType": "scalar", "result": [1, "+Inf"]}))
    assert read(server.url, lambda s: s.query("vector(1)")) == [({}, float("inf"))]


def test_only_the_trial_pods_own_series_count(server: CannedServer) -> None:
    """A series counts for a trial only when its pod is that trial's pod in the sweep's namespace."""
    server.replies[QUERY] = Reply(
        vector(
            # Another pod of the namespace labelled as the trial: its pod label gives it away.
            {"metric": labelled("demo-t0000", pod="impostor"), "value": [1, "0.01"]},
            # The trial's name in another namespace.
            {"metric": labelled("demo-t0001", namespace="other"), "value": [1, "0.02"]},
            # No pod label at all (scraped by a job that does not set it).
            {
                "metric": {"namespace": "ns", "sweep": "demo", "trial": "demo-t0001"},
                "value": [1, "0.03"],
            },
        )
    )
    assert collect(server.url) == {}
    server.replies[QUERY] = Reply(vector({"metric": labelled("demo-t0001"), "value": [1, "0.5"]}))
    assert collect(server.url)["demo-t0001"].value("eval_loss") == 0.5


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (500, MetricsUnavailable, "answered HTTP 500 Internal Server Error"),
        (503, MetricsUnavailable, "answered HTTP 503 Service Unavailable"),
        (401, MetricsUnavailable, "answered HTTP 401 Unauthorized"),
        (599, MetricsUnavailable, "answered HTTP 599"),
        (400, QueryError, r"rejected the query .*\(HTTP 400 Bad Request, bad_data\)"),
        (422, QueryError, r"\(HTTP 422 Unprocessable (Entity|Content), execution\)"),
    ],
)
def test_error_answers_give_status_and_fixed_words_never_the_body(
    server: CannedServer, status: int, error: type[MetricsError], expected: str
) -> None:
    kind = {400: "bad_data", 422: "execution"}.get(status, SECRET)
    body = {"status": "error", "errorType": kind, "error": SECRET, "credentials": CREDENTIALS}
    server.replies[QUERY] = Reply(json.dumps(body).encode(), status=status)
    with pytest.raises(error, match=expected) as raised:
        collect(server.url)
    assert SECRET not in str(raised.value)


def test_unknown_error_type_is_not_repeated(server: CannedServer) -> None:
    body = {"status": "error", "errorType": SECRET, "error": SECRET}
    server.replies[QUERY] = Reply(json.dumps(body).encode(), status=400)
    with pytest.raises(QueryError) as raised:
        collect(server.url)
    assert SECRET not in str(raised.value) and "HTTP 400 Bad Request)" in str(raised.value)


def test_redirect_is_not_followed(server: CannedServer) -> None:
    server.replies[QUERY] = Reply(status=302, headers=(("Location", "/secret"),))
    server.replies["/secret"] = Reply(json.dumps(CREDENTIALS).encode())
    with pytest.raises(MetricsUnavailable, match="HTTP 302 Found"):
        collect(server.url)
    assert "/secret" not in server.paths


def test_api_path_is_joined_below_the_base_path(server: CannedServer) -> None:
    server.replies["/prom/api/v1/query"] = Reply(vector())
    assert read(f"{server.url}/prom/", lambda s: s.query("up")) == []
    assert server.paths == ["/prom/api/v1/query"]


# ---- the direct-scrape path ---------------------------------------------------------------

MALFORMED_PAGES: dict[str, Reply] = {
    "an unterminated label set": Reply(f'kubetune_trial_step{{x="{SECRET}" 1\n'.encode()),
    "a bad value": Reply(f"kubetune_trial_step {SECRET}\n".encode()),
    "an empty label name": Reply(f'kubetune_trial_step{{="{SECRET}"}} 1\n'.encode()),
    "a bare TYPE line": Reply(b"# TYPE kubetune_trial_step\n"),
    "not UTF-8": Reply(b"kubetune_trial_step \xff\xfe\n"),
    "a huge page": Reply(b"# " + b"x" * MAX_ANSWER_BYTES + b"\n"),
    "a huge page streamed": Reply(b"# " + b"x" * MAX_ANSWER_BYTES + b"\n", declare_length=False),
}


def scrape(server: CannedServer, use: Callable[[ScrapeSource], Awaitable[T]]) -> T:
    async def go() -> T:
        source = ScrapeSource(timeout=5.0)
        try:
            return await use(source)
        finally:
            await source.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("shape", sorted(MALFORMED_PAGES))
def test_malformed_metrics_page_never_raises_out(server: CannedServer, shape: str) -> None:
    server.replies["/metrics"] = MALFORMED_PAGES[shape]
    with pytest.raises(MalformedAnswer) as raised:
        scrape(server, lambda s: s.fetch("127.0.0.1", server.port))
    assert SECRET not in str(raised.value)
    # In a sweep's pass, such a trial is only left out: the others are still read.
    with canned_server() as good:
        good.replies["/metrics"] = Reply(b"kubetune_trial_step 3\n")
        targets = [
            TrialTarget("demo-t0000", "127.0.0.1", server.port),
            TrialTarget("demo-t0001", "127.0.0.1", good.port),
        ]
        found = scrape(server, lambda s: s.collect("ns", "demo", targets))
    assert set(found) == {"demo-t0001"} and found["demo-t0001"].step == 3


def test_metrics_page_error_status_quotes_nothing(server: CannedServer) -> None:
    server.replies["/metrics"] = Reply(SECRET.encode(), status=500)
    with pytest.raises(MetricsUnavailable, match="HTTP 500 Internal Server Error") as raised:
        scrape(server, lambda s: s.fetch("127.0.0.1", server.port))
    assert SECRET not in str(raised.value)


def test_a_metric_name_with_dash_dot_or_slash_reads_its_mapped_series() -> None:
    """val/loss is queried as kubetune_trial_val_loss and found again under val/loss."""
    import httpx

    from kubetune.metric_names import trial_metric
    from kubetune.metrics.promql import trial_selector

    assert trial_metric("Validation-accuracy") == "kubetune_trial_Validation_accuracy"
    assert trial_metric("eval.loss/fold-1") == "kubetune_trial_eval_loss_fold_1"
    assert trial_selector("val/loss", "ns", "demo").startswith("kubetune_trial_val_loss{")
    asked: list[str] = []

    def reply(request: httpx.Request) -> httpx.Response:
        query = request.url.params["query"]
        asked.append(query)
        result = []
        if query.startswith("kubetune_trial_val_loss{"):
            result = [{"metric": labelled("demo-t0000"), "value": [1.0, "0.5"]}]
        return httpx.Response(200, stream=httpx.ByteStream(vector(*result)))

    async def go() -> dict[str, TrialReading]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(reply))
        source = PrometheusSource("http://prom", metrics=["val/loss", "val_loss"], client=client)
        try:
            return await source.collect("ns", "demo", [TrialTarget("demo-t0000")])
        finally:
            await client.aclose()

    found = asyncio.run(go())
    assert found["demo-t0000"].value("val/loss") == 0.5
    assert sorted(q.split("{")[0] for q in asked) == [
        "kubetune_trial_done",
        "kubetune_trial_eval_step",
        "kubetune_trial_step",
        "kubetune_trial_val_loss",
    ]
