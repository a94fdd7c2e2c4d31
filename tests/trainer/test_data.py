"""Dataset loading: synthetic tasks, local files, split syntax, bad paths."""

import json
import sys
import types
from pathlib import Path

import pytest

from kubetune.spec import DatasetSpec
from kubetune_trainer import synthetic
from kubetune_trainer.data import folds, load_splits, parse_split
from kubetune_trainer.errors import ConfigError


def test_synthetic_splits_are_disjoint_and_have_answers() -> None:
    splits = load_splits(DatasetSpec(path="synthetic:arithmetic"))
    assert splits.has_answers
    train_prompts = {e.prompt for e in splits.train}
    assert not train_prompts & {e.prompt for e in splits.eval}
    example = splits.eval[0]
    assert example.prompt.startswith("Q: What is ") and example.prompt.endswith("\nA:")
    a, op, b = example.prompt.removeprefix("Q: What is ").removesuffix("?\nA:").split()
    assert int(example.response) == (int(a) + int(b) if op == "plus" else int(a) - int(b))


def test_pretraining_corpus_never_shows_test_problems_as_questions() -> None:
    corpus = synthetic.pretraining_corpus()
    questions = {line for line in corpus if line.startswith("Q: ")}
    assert questions and not any(" plus " in q or "Reverse the word" in q for q in questions)
    for example in synthetic.task_split("arithmetic", "test"):
        terse = example.prompt.replace("What is ", "").replace(" plus ", " + ")
        assert f"{terse.replace(' minus ', ' - ')}{example.response}" not in questions


def test_split_slices_apply() -> None:
    spec = DatasetSpec(
        path="synthetic:reverse", train_split="train[:100]", eval_split="test[10:30]"
    )
    splits = load_splits(spec)
    assert len(splits.train) == 100
    assert splits.eval == synthetic.task_split("reverse", "test")[10:30]
    assert parse_split("train[90%:]", "f") == ("train", "90%", None)


def test_local_jsonl_with_auto_detected_fields(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    rows = [{"instruction": f"Say {i}", "output": str(i)} for i in range(20)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    splits = load_splits(DatasetSpec(path=str(path)))
    assert len(splits.train) == 18 and len(splits.eval) == 2  # 10% held out
    assert splits.train[0].prompt == synthetic.format_prompt("Say 0")
    assert splits.train[0].response == " 0"


def test_local_text_file_is_plain_text(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("one line\n\nanother line\nthird\n")
    splits = load_splits(DatasetSpec(path=str(path)))
    assert not splits.has_answers
    assert [e.response for e in splits.train] == ["one line", "another line"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            DatasetSpec(path="/no/such/file.jsonl"),
            "dataset.path: file not found: /no/such/file.jsonl",
        ),
        (DatasetSpec(path="synthetic:poetry"), "dataset.path: unknown synthetic task 'poetry'"),
        (
            DatasetSpec(path="synthetic:reverse", eval_split="dev"),
            "dataset.evalSplit: synthetic tasks",
        ),
        (
            DatasetSpec(path="synthetic:reverse", train_split="train[a:b]"),
            "dataset.trainSplit: must look like",
        ),
        (
            DatasetSpec(path="synthetic:reverse", eval_split="test[5:5]"),
            "dataset.evalSplit: selects no examples",
        ),
    ],
)
def test_bad_dataset_settings(spec: DatasetSpec, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_splits(spec)
    assert str(caught.value).startswith(message)


def test_missing_field_names_record_and_field(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"q": "a", "a": "b"}\n{"q": "c"}\n')
    with pytest.raises(ConfigError, match=r"dataset.responseField: record 1 has no field 'a'"):
        load_splits(DatasetSpec(path=str(path), prompt_field="q", response_field="a"))


def test_hub_dataset_without_the_datasets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"dataset\.path: 'org/alpaca' is not a local file"):
        load_splits(DatasetSpec(path="org/alpaca"))


def test_hub_dataset_splits_go_to_load_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    def load_dataset(path: str, split: str) -> list[dict[str, str]]:
        calls.append((path, split))
        if path == "org/offline":
            raise ConnectionError("no network")
        return [{"question": f"q{i}", "answer": f"a{i}"} for i in range(5)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    spec = DatasetSpec(path="org/qa", train_split="train[:5]", eval_split="train[5:7]")
    splits = load_splits(spec)
    assert calls == [("org/qa", "train[:5]"), ("org/qa", "train[5:7]")]
    assert splits.train[0].response == " a0" and len(splits.eval) == 5
    with pytest.raises(ConfigError, match="cannot load hub dataset 'org/offline': no network"):
        load_splits(DatasetSpec(path="org/offline"))


def test_folds_partition_the_data() -> None:
    examples = synthetic.task_split("reverse", "test")[:10]
    parts = folds(examples, 3)
    assert [e for _, held in parts for e in held] == examples
    for train, held in parts:
        assert len(train) + len(held) == 10 and not set(train) & set(held)
    with pytest.raises(ConfigError, match="num_folds: needs at least 3 train examples, got 2"):
        folds(examples[:2], 3)
