"""Names that must live in one module only: metric names, env vars, pod labels."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    *ROOT.glob("operator/kubetune/**/*.py"),
    *ROOT.glob("trainer-image/kubetune_trainer/**/*.py"),
]

METRIC_LITERAL = re.compile(r"""["']kubetune_(?!trainer["'])[a-z_]+["']""")
ENV_LITERAL = re.compile(r"""["']KUBETUNE_[A-Z_]+["']""")
LABEL_LITERAL = re.compile(r"""["']kubetune\.dev/(sweep|trial)["']""")


def offenders(pattern: re.Pattern[str], home: str) -> list[str]:
    found = []
    for path in SOURCES:
        if path.name == home:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_sources_were_found() -> None:
    assert len(SOURCES) > 10


def test_metric_names_only_in_metric_names_module() -> None:
    assert offenders(METRIC_LITERAL, "metric_names.py") == []


def test_env_names_only_in_conventions() -> None:
    assert offenders(ENV_LITERAL, "conventions.py") == []


def test_pod_labels_only_in_conventions() -> None:
    assert offenders(LABEL_LITERAL, "conventions.py") == []
