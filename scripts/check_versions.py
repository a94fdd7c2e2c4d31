"""Check that the release versions agree; one line per problem, exit 1 on any.

    python scripts/check_versions.py [TAG]

pyproject.toml's version, charts/kubetune/Chart.yaml's version and appVersion, and TAG
(v<version>, e.g. the pushed git tag; optional) must be the same version, and the chart's
default images must follow appVersion: the operator's image.tag empty (the chart then uses
appVersion) and defaults.trainerImage tagged with appVersion.
"""

import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = Path("charts/kubetune")


def problems(root: Path = ROOT, tag: str | None = None) -> list[str]:
    """What disagrees, each naming the file and field; empty when all agree."""
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((root / CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((root / CHART / "values.yaml").read_text())
    found: list[str] = []
    for field in ("version", "appVersion"):
        if str(chart.get(field)) != version:
            found.append(
                f"{CHART}/Chart.yaml: {field} is {chart.get(field)!r}, "
                f"pyproject.toml's version is {version!r}"
            )
    if tag is not None and tag.removeprefix("refs/tags/") != f"v{version}":
        found.append(f"tag {tag!r} is not v{version} (pyproject.toml's version)")
    app = str(chart.get("appVersion"))
    operator_tag = values.get("image", {}).get("tag")
    if operator_tag not in ("", None, app):
        found.append(
            f"{CHART}/values.yaml: image.tag is {operator_tag!r}; leave it empty so the "
            f"operator image follows appVersion {app!r}"
        )
    trainer = str(values.get("defaults", {}).get("trainerImage", ""))
    if trainer.rpartition(":")[2] != app:
        found.append(
            f"{CHART}/values.yaml: defaults.trainerImage {trainer!r} is not tagged with "
            f"appVersion {app!r}"
        )
    return found


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print("usage: python scripts/check_versions.py [TAG]", file=sys.stderr)
        return 2
    found = problems(ROOT, argv[0] if argv else None)
    for line in found:
        print(f"check_versions: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
