"""Prometheus URLs: the shapes refused outright, the allow-list rule, and API URL joining."""

import pytest

from kubetune.metrics import PrometheusUrlPolicy, UrlRefused, parse_base_url

DEFAULT = "http://prometheus-operated.monitoring.svc:9090"


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://evil.example/secret#", "a fragment"),
        ("http://evil.example/secret#frag", "a fragment"),
        ("http://prom:9090/?", "a query string"),
        ("http://prom:9090/?x=1", "a query string"),
        ("http://user:pw@prom:9090", "userinfo"),
        ("http://@prom:9090", "userinfo"),
        ("http://prom:9090/a/../secret", "no . or .. segments"),
        ("http://prom:9090/./x", "no . or .. segments"),
        ("http://prom:9090//x", "between single slashes"),
        ("http://prom:9090/%2e%2e/x", "percent escapes"),
        ("http://prom:9090/a b", "whitespace"),
        ("http://prom:9090/a\n", "whitespace"),
        ("http://prom:9090\\@evil", "backslashes"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://prom:70", "http or https"),
        ("http:///x", "no host"),
        ("http://prom:99999", "not a URL"),
        ("http://prom:" + "9" * 3000, "longer than"),
    ],
)
def test_refused_shapes_name_their_rule(url: str, rule: str) -> None:
    with pytest.raises(UrlRefused, match=rule):
        parse_base_url(url)


def test_normalized_form() -> None:
    base = parse_base_url("HTTP://Prom.Monitoring.SVC:80/Thanos/")
    assert (base.scheme, base.host, base.port, base.path) == (
        "http",
        "prom.monitoring.svc",
        80,
        "/Thanos",
    )
    assert str(base) == "http://prom.monitoring.svc/Thanos"
    assert str(parse_base_url("https://[::1]:9443")) == "https://[::1]:9443"


def test_api_url_is_joined_below_the_base_path() -> None:
    assert parse_base_url("http://prom:9090").api("api/v1/query") == "http://prom:9090/api/v1/query"
    assert (
        parse_base_url("http://prom:9090/tenant-a/").api("/api/v1/query_range")
        == "http://prom:9090/tenant-a/api/v1/query_range"
    )
    with pytest.raises(ValueError):
        parse_base_url("http://prom:9090").api("api/../admin")


def test_by_default_only_the_operators_url_is_allowed() -> None:
    policy = PrometheusUrlPolicy.from_settings(DEFAULT)
    assert str(policy.resolve(None)) == DEFAULT
    assert str(policy.resolve(DEFAULT + "/")) == DEFAULT
    # Default ports and case do not matter; the path below the default one is allowed.
    assert policy.resolve("http://PROMETHEUS-OPERATED.monitoring.svc:9090/sub") is not None
    for other in (
        "http://prometheus-operated.monitoring.svc:9091",  # another port
        "https://prometheus-operated.monitoring.svc:9090",  # another scheme
        "http://prometheus-operated.monitoring.svc.evil.example:9090",  # another host
        "http://kubernetes.default.svc:443",
    ):
        problem = policy.problem(other)
        assert problem is not None
        assert problem.startswith("spec.metrics.prometheus.url: ")
        assert "allow-list" in problem and "scheme, host and port" in problem
        assert "prometheus.allowedUrls" in problem


def test_without_any_configuration_no_sweep_url_is_allowed() -> None:
    policy = PrometheusUrlPolicy()
    assert policy.resolve(None) is None
    assert policy.problem(DEFAULT) is not None


def test_allowed_urls_match_at_path_segment_boundaries() -> None:
    policy = PrometheusUrlPolicy.from_settings(None, ("https://thanos.example/tenants/team-a",))
    assert policy.problem("https://thanos.example/tenants/team-a") is None
    assert policy.problem("https://thanos.example:443/tenants/team-a/") is None
    assert policy.problem("https://thanos.example/tenants/team-a/sub") is None
    assert policy.problem("https://thanos.example/tenants/team-ab") is not None
    assert policy.problem("https://thanos.example/tenants") is not None
    assert policy.problem("http://thanos.example/tenants/team-a") is not None


def test_malformed_sweep_url_is_refused_naming_the_field_and_rule() -> None:
    policy = PrometheusUrlPolicy.from_settings(DEFAULT)
    problem = policy.problem(DEFAULT + "/secret#")
    assert problem == "spec.metrics.prometheus.url: a fragment ('#') is not allowed"


def test_malformed_admin_urls_are_refused_naming_the_entry() -> None:
    with pytest.raises(UrlRefused, match=r"^allowed Prometheus URL #2: userinfo") as raised:
        PrometheusUrlPolicy.from_settings(DEFAULT, ("http://ok", "http://user:pw@b"))
    assert "pw" not in str(raised.value)
    with pytest.raises(UrlRefused, match=r"^the default Prometheus URL: a query"):
        PrometheusUrlPolicy.from_settings("http://p/?x")
