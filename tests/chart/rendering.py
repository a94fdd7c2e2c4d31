"""Rendering the chart with the real Helm engine (helm-python-sdk's bundled libhelm)."""

import copy
import functools
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kubetune"
RELEASE = "kubetune"
RELEASE_NAMESPACE = "kubetune"

Manifest = dict[str, Any]

# Every switch that adds or removes objects; each combination is rendered.
TOGGLES: dict[str, tuple[str, ...]] = {
    "serviceMonitor": ("metrics", "serviceMonitor", "enabled"),
    "podMonitor": ("metrics", "podMonitor", "enabled"),
    "prometheusRule": ("metrics", "prometheusRule", "enabled"),
    "scrapeConfig": ("metrics", "scrapeConfig", "enabled"),
    "dashboards": ("grafana", "dashboards", "enabled"),
    "networkPolicy": ("networkPolicy", "enabled"),
    "admissionPolicy": ("admissionPolicy", "enabled"),
}
SCOPES: dict[str, list[str]] = {"cluster": [], "namespaced": ["team-a", "team-b"]}


def set_path(values: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = values
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def combination_values(enabled: frozenset[str], scope: str) -> dict[str, Any]:
    values: dict[str, Any] = {"watchNamespaces": SCOPES[scope]}
    for name, path in TOGGLES.items():
        set_path(values, path, name in enabled)
    return values


def combinations() -> Iterator[tuple[frozenset[str], str]]:
    names = sorted(TOGGLES)
    for scope in SCOPES:
        for flags in itertools.product((False, True), repeat=len(names)):
            yield frozenset(n for n, on in zip(names, flags, strict=True) if on), scope


def combination_id(enabled: frozenset[str], scope: str) -> str:
    return "+".join([scope, *sorted(enabled)]) if enabled else f"{scope}+none"


@functools.cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render_files(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would produce them."""
    return _chart().render(
        copy.deepcopy(values) if values else None,
        name=RELEASE,
        namespace=RELEASE_NAMESPACE,
        is_install=True,
    )


def render(values: dict[str, Any] | None = None) -> list[Manifest]:
    """Every object the chart installs (templates, tests hook included; not NOTES.txt)."""
    manifests: list[Manifest] = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        manifests.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return manifests


def notes(values: dict[str, Any] | None = None) -> str:
    return render_files(values)[f"{RELEASE}/templates/NOTES.txt"]


def by_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def one(manifests: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [m for m in by_kind(manifests, kind) if name is None or m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def chart_crds() -> list[Manifest]:
    return [yaml.safe_load(crd["data"]) for crd in _chart().crds]


def fingerprint(manifest: Manifest) -> str:
    return json.dumps(manifest, sort_keys=True)
