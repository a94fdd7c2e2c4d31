"""The operator's Prometheus allow-list: from the environment or options, checked at start."""

import argparse

import pytest

from kubetune import conventions
from kubetune.operator.main import run
from kubetune.operator.options import add_arguments, config_from


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_allowed_urls_from_environment_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(conventions.ENV_DEFAULT_PROMETHEUS_URL, "http://prom:9090")
    monkeypatch.setenv(conventions.ENV_ALLOWED_PROMETHEUS_URLS, " http://a:1/x , ,https://b ")
    config = config_from(parse())
    assert config.allowed_prometheus_urls == ("http://a:1/x", "https://b")
    policy = config.prometheus_policy()
    assert policy.problem("http://a:1/x/tenant") is None
    assert policy.problem("http://prom:9090") is None
    assert policy.problem("http://c:1") is not None
    config = config_from(parse("--allow-prometheus-url", "http://c:1"))
    assert config.allowed_prometheus_urls == ("http://c:1",)


def test_malformed_allowed_url_stops_the_operator_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(conventions.ENV_DEFAULT_PROMETHEUS_URL, raising=False)
    assert run(parse("--allow-prometheus-url", "http://user:pw@prom:9090")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "userinfo" in err and "Traceback" not in err
    assert "pw" not in err
