"""Train and eval splits from a synthetic task, a local JSONL/text file, or a hub dataset.

Hub datasets (an id, or a local folder laid out as a hub dataset repository) go through the
`datasets` library; local files are read here, without it.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubetune.spec import DatasetSpec
from kubetune.spec.hub import hub_dataset, looks_local
from kubetune.text import excerpt
from kubetune_trainer import synthetic
from kubetune_trainer.errors import ConfigError
from kubetune_trainer.synthetic import Example

_SPLIT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)?(?:\[(?P<start>-?\d+%?)?:(?P<stop>-?\d+%?)?\])?$")
# Held out from a local file that names no eval split.
_AUTO_EVAL_FRACTION = 0.1
_AUTO_EVAL_MAX = 500
# Column pairs recognised when the spec names no fields, most specific first.
_PAIRS = (
    ("prompt", "response"),
    ("prompt", "completion"),
    ("instruction", "output"),
    ("question", "answer"),
    ("input", "output"),
)


@dataclass(frozen=True)
class Splits:
    train: list[Example]
    eval: list[Example]
    source: str

    @property
    def has_answers(self) -> bool:
        """Exact-match accuracy makes sense: eval examples are prompts with answers."""
        return bool(self.eval) and all(e.has_answer for e in self.eval)


def parse_split(text: str, field: str) -> tuple[str | None, str | None, str | None]:
    """'train[:2000]' -> ('train', None, '2000'); raises ConfigError when malformed."""
    match = _SPLIT.match(text.strip())
    if not match:
        raise ConfigError(
            field, f'must look like "train", "train[:2000]" or "train[90%:]", got {text!r}'
        )
    return match.group("name"), match.group("start"), match.group("stop")


def _bound(raw: str | None, size: int) -> int | None:
    if raw is None:
        return None
    if raw.endswith("%"):
        return round(size * int(raw[:-1]) / 100)
    return int(raw)


def apply_split(examples: list[Example], text: str, field: str) -> list[Example]:
    _, start, stop = parse_split(text, field)
    return examples[_bound(start, len(examples)) : _bound(stop, len(examples))]


def _synthetic(spec: DatasetSpec) -> Splits:
    task = spec.path.removeprefix(synthetic.PREFIX)
    if task not in synthetic.TASKS:
        raise ConfigError(
            "dataset.path", f"unknown synthetic task {task!r}; known: {', '.join(synthetic.TASKS)}"
        )

    def split(text: str | None, default: str, field: str) -> list[Example]:
        name = parse_split(text, field)[0] if text else default
        if name not in ("train", "test"):
            raise ConfigError(field, f"synthetic tasks have splits train and test, got {name!r}")
        examples = synthetic.task_split(task, name)
        return apply_split(examples, text, field) if text else examples

    return Splits(
        train=split(spec.train_split, "train", "dataset.trainSplit"),
        eval=split(spec.eval_split, "test", "dataset.evalSplit"),
        source=spec.path,
    )


def _field(record: dict[str, Any], name: str, index: int, where: str) -> str:
    if name not in record:
        raise ConfigError(where, f"record {index} has no field {name!r} (fields: {sorted(record)})")
    value = record[name]
    return value if isinstance(value, str) else json.dumps(value)


def to_examples(records: Iterable[dict[str, Any]], spec: DatasetSpec) -> list[Example]:
    """Records to examples, by the spec's field names or the first known column pair."""
    examples: list[Example] = []
    for index, record in enumerate(records):
        if spec.text_field:
            examples.append(
                Example("", _field(record, spec.text_field, index, "dataset.textField"))
            )
            continue
        prompt_name, response_name = spec.prompt_field, spec.response_field
        if prompt_name is None or response_name is None:
            pair = next((p for p in _PAIRS if p[0] in record and p[1] in record), None)
            if pair is None and "text" in record and prompt_name is None:
                examples.append(Example("", _field(record, "text", index, "dataset.textField")))
                continue
            if pair is None:
                raise ConfigError(
                    "dataset.promptField",
                    f"record {index} has no known prompt/response columns ({sorted(record)}); "
                    "set dataset.promptField and dataset.responseField, or dataset.textField",
                )
            prompt_name = prompt_name or pair[0]
            response_name = response_name or pair[1]
        prompt = _field(record, prompt_name, index, "dataset.promptField")
        if prompt_name == "instruction" and record.get("input"):
            prompt = f"{prompt}\n{record['input']}"
        response = _field(record, response_name, index, "dataset.responseField")
        examples.append(
            Example(
                synthetic.format_prompt(prompt),
                response if response[:1].isspace() else f" {response}",
            )
        )
    return examples


def _read_records(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".txt":
        return [{"text": line} for line in path.read_text().splitlines() if line.strip()]
    text = path.read_text()
    if path.suffix == ".json" and text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ConfigError(
                    "dataset.path", f"{path}:{number}: not JSON ({error.msg})"
                ) from None
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError("dataset.path", f"{path}: record {index} is not a JSON object")
    return rows


def _local(spec: DatasetSpec, path: Path) -> Splits:
    examples = to_examples(_read_records(path), spec)
    if not examples:
        raise ConfigError("dataset.path", f"{path} holds no examples")
    if spec.eval_split:
        train = apply_split(examples, spec.train_split or "train", "dataset.trainSplit")
        held = apply_split(examples, spec.eval_split, "dataset.evalSplit")
    else:
        n_eval = min(_AUTO_EVAL_MAX, max(1, round(len(examples) * _AUTO_EVAL_FRACTION)))
        base = (
            apply_split(examples, spec.train_split, "dataset.trainSplit")
            if spec.train_split
            else examples
        )
        if len(base) < 2:
            raise ConfigError(
                "dataset.path", f"{path} needs at least 2 examples to hold one out for eval"
            )
        train, held = base[:-n_eval], base[-n_eval:]
    return Splits(train=train, eval=held, source=str(path))


def _import_datasets(spec: DatasetSpec) -> Any:
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            "dataset.path",
            f"{spec.path!r} is not a local file, and hub datasets need the `datasets` package",
        ) from None
    return datasets


def _hub_split(loaded: Any, text: str, field: str, source: str) -> Any:
    """One split of a loaded DatasetDict, sliced as local files and synthetic tasks are."""
    name, start, stop = parse_split(text, field)
    name = name or "train"
    if name not in loaded:
        raise ConfigError(
            field, f"{source!r} has no split {name!r} (splits: {', '.join(sorted(loaded))})"
        )
    split = loaded[name]
    bounds = slice(_bound(start, len(split)), _bound(stop, len(split))).indices(len(split))
    # select() keeps the memory-mapped Arrow table; only the slice becomes Python records.
    return split.select(range(*bounds))


def _hub(spec: DatasetSpec, source: str) -> Splits:
    """A hub dataset id or a local folder laid out as a hub dataset repository."""
    datasets = _import_datasets(spec)
    try:
        # Every split at once: datasets prepares all of them even when asked for one, and
        # the split names are then ours to check, for a one-line error naming the field.
        loaded = datasets.load_dataset(source)
    except Exception as error:  # the hub client raises many kinds; all mean "cannot load"
        raise ConfigError(
            "dataset.path", f"cannot load dataset {spec.path!r}: {excerpt(str(error), 300)}"
        ) from None
    train = to_examples(
        iter(_hub_split(loaded, spec.train_split or "train", "dataset.trainSplit", spec.path)),
        spec,
    )
    if spec.eval_split:
        held = _hub_split(loaded, spec.eval_split, "dataset.evalSplit", spec.path)
        return Splits(train, to_examples(iter(held), spec), spec.path)
    if len(train) < 2:
        raise ConfigError(
            "dataset.trainSplit",
            f"{spec.path!r} needs at least 2 examples to hold one out for eval",
        )
    n_eval = min(_AUTO_EVAL_MAX, max(1, round(len(train) * _AUTO_EVAL_FRACTION)))
    return Splits(train[:-n_eval], train[-n_eval:], spec.path)


def hub_dataset_id(spec: DatasetSpec) -> str | None:
    """The hub dataset id dataset.path names; None for synthetic data and local files."""
    return hub_dataset(spec.path, exists=lambda path: Path(path).expanduser().exists())


def load_splits(spec: DatasetSpec) -> Splits:
    """The train and eval examples; raises ConfigError naming the dataset field."""
    if spec.path.startswith(synthetic.PREFIX):
        splits = _synthetic(spec)
    else:
        path = Path(spec.path).expanduser()
        if path.is_file():
            splits = _local(spec, path)
        elif path.is_dir():
            splits = _hub(spec, str(path))
        elif looks_local(spec.path):
            raise ConfigError("dataset.path", f"file not found: {spec.path}")
        else:
            splits = _hub(spec, spec.path)
    if not splits.train:
        raise ConfigError("dataset.trainSplit", f"selects no examples from {splits.source}")
    if not splits.eval:
        raise ConfigError("dataset.evalSplit", f"selects no examples from {splits.source}")
    return splits


def folds(examples: list[Example], k: int) -> list[tuple[list[Example], list[Example]]]:
    """k (train, held-out) partitions for cross-validation: contiguous, disjoint, covering."""
    if len(examples) < k:
        raise ConfigError(
            "trainer.args.num_folds", f"needs at least {k} train examples, got {len(examples)}"
        )
    bounds = [round(i * len(examples) / k) for i in range(k + 1)]
    return [
        (examples[: bounds[i]] + examples[bounds[i + 1] :], examples[bounds[i] : bounds[i + 1]])
        for i in range(k)
    ]
