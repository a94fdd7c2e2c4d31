"""Names that must live in one module only: metric names, env vars, pod labels."""

import ast
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


def test_tiny_model_name_only_in_conventions() -> None:
    assert offenders(re.compile(r"^\s*TINY_MODEL\b[^=]*="), "conventions.py") == []


def imported_modules(path: Path) -> set[str]:
    """Every module an `import` statement in the file names, at any depth (lazy ones too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found.add(str(node.args[0].value))
    return found


def test_kubetune_never_imports_the_trainer() -> None:
    # The trainer may import kubetune's small contract modules; never the reverse: the
    # operator image and `kubetune validate` run without the trainer (or torch) installed.
    offending = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in ROOT.glob("operator/kubetune/**/*.py")
        for module in sorted(imported_modules(path))
        if module.split(".")[0] == "kubetune_trainer"
    ]
    assert offending == []


def test_the_import_guard_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "lazy.py"
    source.write_text(
        "def f():\n    from kubetune_trainer.config import resolve\n"
        "    import importlib\n    importlib.import_module('kubetune_trainer.tiny')\n"
    )
    assert imported_modules(source) >= {"kubetune_trainer.config", "kubetune_trainer.tiny"}
