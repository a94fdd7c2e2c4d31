"""Read HyperparameterSweep manifests from YAML files or text."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kubetune import API_GROUP, KIND
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


@dataclass(frozen=True)
class Document:
    """One YAML document of a file: its 1-based position and what it decoded to."""

    number: int
    body: Any

    @property
    def name(self) -> str | None:
        meta = self.body.get("metadata") if isinstance(self.body, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        return name if isinstance(name, str) else None

    @property
    def label(self) -> str:
        """How messages name it: document 2 (my-sweep)."""
        return f"document {self.number}" + (f" ({self.name})" if self.name else "")

    @property
    def kind(self) -> Any:
        return self.body.get("kind") if isinstance(self.body, dict) else None

    def meant_as_sweep(self) -> bool:
        """A HyperparameterSweep, or a broken one: no kind, or kubetune's API group.

        Only documents plainly of another kind (a ConfigMap beside the sweep) are skipped.
        """
        if not isinstance(self.body, dict) or self.kind in (KIND, None):
            return True
        api_version = self.body.get("apiVersion")
        return isinstance(api_version, str) and api_version.split("/")[0] == API_GROUP


@dataclass(frozen=True)
class SweepFile:
    """A file's documents: those to check as sweeps, and those of other kinds, skipped."""

    source: str
    sweeps: list[Document]
    skipped: list[Document]
    single: bool  # one document: messages need no "document N" prefix

    def where(self, document: Document) -> str:
        return self.source if self.single else f"{self.source}: {document.label}"


def read_sweep_file(path: str | Path) -> SweepFile:
    """Split a (multi-document) YAML file; SpecError when it holds no sweep at all."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError(source, [f"cannot read file: {error.strerror}"]) from None
    documents = [Document(i, body) for i, body in enumerate(load_documents(text, source), 1)]
    if len(documents) == 1:
        return SweepFile(source, documents, [], single=True)
    sweeps = [d for d in documents if d.meant_as_sweep()]
    if not sweeps:
        kinds = ", ".join(sorted({str(d.kind) for d in documents}))
        raise SpecError(source, [f"no {KIND} among its {len(documents)} documents ({kinds})"])
    skipped = [d for d in documents if not d.meant_as_sweep()]
    return SweepFile(source, sweeps, skipped, single=False)


def load_sweeps(path: str | Path) -> list[HyperparameterSweep]:
    """Every sweep in a (multi-document) YAML file; documents of other kinds are skipped."""
    found = read_sweep_file(path)
    return [parse_sweep(doc.body, found.where(doc)) for doc in found.sweeps]


def load_sweep(path: str | Path, name: str | None = None) -> HyperparameterSweep:
    """The one sweep in a YAML file, or the one called `name` among several.

    Only the chosen document is validated: a broken neighbour does not stop it.
    """
    found = read_sweep_file(path)
    candidates = found.sweeps
    labels = ", ".join(d.name or d.label for d in found.sweeps)
    if name is not None:
        candidates = [d for d in found.sweeps if d.name == name]
        if not candidates:
            raise SpecError(found.source, [f"--name: no sweep named {name!r} (have {labels})"])
        if len(candidates) > 1:
            twins = ", ".join(d.label for d in candidates)
            raise SpecError(found.source, [f"--name: {name!r} names several documents ({twins})"])
    elif len(candidates) > 1:
        raise SpecError(
            found.source,
            [f"holds {len(candidates)} sweeps ({labels}): choose one with --name NAME"],
        )
    return parse_sweep(candidates[0].body, found.where(candidates[0]))
