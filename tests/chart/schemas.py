"""Checking rendered objects: Kubernetes' own schemas offline, and the Prometheus operator kinds.

kubernetes-validate ships the OpenAPI schemas of the built-in kinds only. The Prometheus
operator's CRDs are not available offline, so their required fields (those the CRDs mark
required, and those without which the object does nothing) are checked here by hand.
"""

import functools
import json
import re
from typing import Any

import kubernetes_validate

# kubectl on the test machines is v1.32; validate against that API.
KUBERNETES_VERSION = "1.32.0"
MONITORING_GROUP = "monitoring.coreos.com/v1"
_DURATION = re.compile(
    r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$"
)


@functools.cache
def _validate_builtin(serialized: str) -> None:
    kubernetes_validate.validate(json.loads(serialized), KUBERNETES_VERSION, strict=True)


def validate_builtin(manifest: dict[str, Any]) -> None:
    """Raise kubernetes_validate's ValidationError (strict: unknown fields fail too)."""
    _validate_builtin(json.dumps(manifest, sort_keys=True))


def _require(condition: bool, kind: str, message: str) -> None:
    if not condition:
        raise AssertionError(f"{kind}: {message}")


def _duration(value: Any) -> bool:
    return isinstance(value, str) and bool(value) and bool(_DURATION.match(value))


def _label_selector(kind: str, selector: Any) -> None:
    _require(isinstance(selector, dict), kind, "spec.selector must be an object")
    _require(
        bool(selector.get("matchLabels") or selector.get("matchExpressions")),
        kind,
        "spec.selector selects nothing",
    )
    for expression in selector.get("matchExpressions", []):
        _require(
            {"key", "operator"} <= expression.keys(), kind, f"bad matchExpression {expression}"
        )
        _require(
            expression["operator"] in ("In", "NotIn", "Exists", "DoesNotExist"),
            kind,
            f"bad operator {expression['operator']}",
        )


def _endpoints(kind: str, endpoints: Any) -> None:
    _require(isinstance(endpoints, list) and bool(endpoints), kind, "needs at least one endpoint")
    for endpoint in endpoints:
        _require(isinstance(endpoint.get("port"), str), kind, "endpoint needs a named port")
        for key in ("interval", "scrapeTimeout"):
            if key in endpoint:
                _require(_duration(endpoint[key]), kind, f"{key} {endpoint[key]!r} is no duration")
        if "honorLabels" in endpoint:
            _require(isinstance(endpoint["honorLabels"], bool), kind, "honorLabels must be bool")
        for rule in endpoint.get("relabelings", []):
            _relabeling(kind, rule)


# RelabelConfig of monitoring.coreos.com/v1 (both spellings of each action are accepted).
_RELABEL_FIELDS = {
    "sourceLabels",
    "separator",
    "targetLabel",
    "regex",
    "modulus",
    "replacement",
    "action",
}
_RELABEL_ACTIONS = {
    "replace",
    "keep",
    "drop",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
    "keepequal",
    "dropequal",
}


def _relabeling(kind: str, rule: Any) -> None:
    _require(isinstance(rule, dict), kind, "a relabeling must be an object")
    unknown = set(rule) - _RELABEL_FIELDS
    _require(not unknown, kind, f"unknown relabeling fields {sorted(unknown)}")
    sources = rule.get("sourceLabels", [])
    _require(
        isinstance(sources, list) and all(isinstance(s, str) for s in sources),
        kind,
        "sourceLabels must be a list of label names",
    )
    action = str(rule.get("action", "replace")).lower()
    _require(action in _RELABEL_ACTIONS, kind, f"unknown relabeling action {action!r}")
    if action in ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"):
        _require(isinstance(rule.get("targetLabel"), str), kind, f"{action} needs targetLabel")


def _common(manifest: dict[str, Any]) -> dict[str, Any]:
    kind = manifest["kind"]
    _require(manifest.get("apiVersion") == MONITORING_GROUP, kind, "apiVersion")
    metadata = manifest.get("metadata", {})
    _require(bool(metadata.get("name")), kind, "metadata.name is required")
    _require(bool(metadata.get("namespace")), kind, "metadata.namespace is required")
    spec = manifest.get("spec")
    _require(isinstance(spec, dict), kind, "spec is required")
    assert isinstance(spec, dict)
    return spec


def validate_monitoring(manifest: dict[str, Any]) -> None:
    """Required fields of ServiceMonitor, PodMonitor and PrometheusRule (monitoring.coreos.com/v1)."""
    kind = manifest["kind"]
    spec = _common(manifest)
    if kind == "ServiceMonitor":
        _label_selector(kind, spec.get("selector"))
        _endpoints(kind, spec.get("endpoints"))
    elif kind == "PodMonitor":
        _label_selector(kind, spec.get("selector"))
        _endpoints(kind, spec.get("podMetricsEndpoints"))
    elif kind == "PrometheusRule":
        groups = spec.get("groups")
        _require(isinstance(groups, list) and bool(groups), kind, "spec.groups is required")
        assert isinstance(groups, list)
        for group in groups:
            _require(bool(group.get("name")), kind, "every group needs a name")
            _require(bool(group.get("rules")), kind, f"group {group.get('name')} has no rules")
            for rule in group["rules"]:
                _require(bool(rule.get("expr")), kind, f"rule {rule} needs expr")
                _require(
                    ("alert" in rule) != ("record" in rule),
                    kind,
                    f"rule needs exactly one of alert/record: {rule}",
                )
                if "for" in rule:
                    _require(_duration(rule["for"]), kind, f"for {rule['for']!r} is no duration")
    else:
        raise AssertionError(f"not a Prometheus operator kind: {kind}")
    if "namespaceSelector" in spec:
        selector = spec["namespaceSelector"]
        _require(
            selector.get("any") is True or bool(selector.get("matchNames")),
            kind,
            "namespaceSelector must be any: true or list matchNames",
        )
