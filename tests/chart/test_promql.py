"""The PromQL reader the dashboard checks rely on: selectors found, nothing else mistaken for one."""

import pytest

from tests.chart.promql import Selector, metric_names, substitute, vector_selectors


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", [Selector("up", "")]),
        ('kubetune_trials{state="failed"}', [Selector("kubetune_trials", 'state="failed"')]),
        (
            'sum by (namespace, sweep) (kubetune_trials{state=~"a|b"}) > 0.5',
            [Selector("kubetune_trials", 'state=~"a|b"')],
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(kubetune_reconcile_seconds_bucket[5m])))",
            [Selector("kubetune_reconcile_seconds_bucket", "")],
        ),
        (
            "a * on (namespace, trial) group_left (lr, lora_r) b unless ignoring (x) c",
            [Selector("a", ""), Selector("b", ""), Selector("c", "")],
        ),
        # Braces and keywords inside strings are not selectors.
        (
            'm{a="sum by (x) {y}", b!~"or"} offset 5m',
            [Selector("m", 'a="sum by (x) {y}", b!~"or"')],
        ),
        ("max_over_time(x[1h30m:1m]) / 1e3 + 0x1f", [Selector("x", "")]),
        ("absent(up{job='k'}) or vector(0)", [Selector("up", "job='k'")]),
        ('{__name__="up"}', [Selector("", '__name__="up"')]),
        ("count without (instance) (x) and bool y", [Selector("x", ""), Selector("y", "")]),
    ],
)
def test_vector_selectors(expr: str, expected: list[Selector]) -> None:
    assert vector_selectors(expr) == expected


def test_metric_names_ignore_functions_and_label_lists() -> None:
    expr = 'topk(3, sum by (le, job) (rate(m_total{job=~"$job"}[$__rate_interval])))'
    assert metric_names(expr) == {"m_total"}


def test_unbalanced_expression_is_an_error() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        vector_selectors('m{a="b"')


def test_substitute_prefers_longer_variable_names() -> None:
    variables = {"__range": "5m", "__range_s": "300", "sweep": "demo"}
    assert substitute("x[$__range] $__range_s ${sweep}-$sweep", variables) == "x[5m] 300 demo-demo"
