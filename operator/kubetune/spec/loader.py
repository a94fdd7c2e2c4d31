"""Read HyperparameterSweep manifests from YAML files or text."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kubetune import KIND
from kubetune.spec.errors import SpecError, describe
from kubetune.spec.resource import API_VERSION_STRING, HyperparameterSweep


def parse_sweep(document: Any, source: str = "<input>") -> HyperparameterSweep:
    """Validate one decoded manifest; SpecError lists every problem found."""
    if not isinstance(document, dict):
        raise SpecError(source, ["the document must be a mapping (a Kubernetes object)"])
    kind = document.get("kind")
    if kind != KIND:
        raise SpecError(source, [f"kind: must be {KIND}, got {kind!r}"])
    api_version = document.get("apiVersion")
    if api_version != API_VERSION_STRING:
        raise SpecError(source, [f"apiVersion: must be {API_VERSION_STRING}, got {api_version!r}"])
    try:
        return HyperparameterSweep.model_validate(document)
    except ValidationError as error:
        raise SpecError(source, describe(error)) from None


def load_documents(text: str, source: str = "<input>") -> list[Any]:
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError(source, [f"malformed YAML: {where}{problem}"]) from None
    if not docs:
        raise SpecError(source, ["no YAML document found"])
    return docs


def load_sweeps(path: str | Path) -> list[HyperparameterSweep]:
    """Every sweep in a (multi-document) YAML file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(source, [f"cannot read file: {error.strerror}"]) from None
    return [parse_sweep(doc, source) for doc in load_documents(text, source)]


def load_sweep(path: str | Path) -> HyperparameterSweep:
    """The single sweep in a YAML file."""
    sweeps = load_sweeps(path)
    if len(sweeps) != 1:
        raise SpecError(str(path), [f"expected one HyperparameterSweep, found {len(sweeps)}"])
    return sweeps[0]
