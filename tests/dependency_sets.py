"""Dependency sets from pyproject.toml, and running code with only one of them importable.

`run_blocked` runs a module as `python -m` would, with every operator-only distribution
refusing to import: what a trainer image (base + [trainer], no [operator]) would see.
"""

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Makes the blocked modules and distributions look absent, then runs the module as
# `python -m <module>` would; exits non-zero if anything blocked got imported anyway.
# Libraries probe optional packages with importlib.util.find_spec or importlib.metadata
# (transformers does both) before importing them: those answer "absent" too.
_RUNNER = """
import importlib.abc, importlib.metadata, importlib.util, re, runpy, sys
BLOCKED = frozenset(sys.argv[1].split(","))
DISTRIBUTIONS = frozenset(sys.argv[2].split(","))

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

real_find_spec = importlib.util.find_spec
def find_spec(name, package=None):
    if name.partition(".")[0] in BLOCKED:
        return None
    return real_find_spec(name, package)

real_distribution = importlib.metadata.distribution
def distribution(name):
    if re.sub(r"[-_.]+", "-", name).lower() in DISTRIBUTIONS:
        raise importlib.metadata.PackageNotFoundError(name)
    return real_distribution(name)

sys.meta_path.insert(0, Refuse())
importlib.util.find_spec = find_spec
importlib.metadata.distribution = distribution
MODULE = sys.argv[3]
sys.argv = [MODULE, *sys.argv[4:]]
try:
    runpy.run_module(MODULE, run_name="__main__", alter_sys=True)
finally:
    leaked = BLOCKED & {m.partition(".")[0] for m in sys.modules}
    if leaked:
        sys.exit(f"imported {sorted(leaked)}")
"""


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _closure(names: set[str]) -> set[str]:
    """The distributions `names` pull in, as installed here (no extras of theirs)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def operator_only_distributions() -> set[str]:
    """What [operator] pulls in that base + [trainer] does not (canonical names)."""
    trainer = _closure(
        _names(PROJECT["dependencies"] + PROJECT["optional-dependencies"]["trainer"])
    )
    return _closure(_names(PROJECT["optional-dependencies"]["operator"])) - trainer


def blocked_modules() -> list[str]:
    """Top-level modules of the distributions only the operator needs."""
    operator_only = operator_only_distributions()
    modules = {
        module
        for module, dists in metadata.packages_distributions().items()
        if any(canonicalize_name(d) in operator_only for d in dists)
        and not module.startswith("_")
        and module.isidentifier()
    }
    return sorted(modules)


def run_blocked(
    module: str,
    argv: list[str],
    env: dict[str, str] | None = None,
    timeout: float = 120,
    blocked: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m module *argv` with the operator-only modules (or `blocked`) unimportable."""
    refused = ",".join(blocked_modules() if blocked is None else blocked)
    distributions = ",".join(sorted(operator_only_distributions()) if blocked is None else blocked)
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, refused, distributions, module, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
