"""Dataset loading: synthetic tasks, local files, hub datasets, split syntax, bad paths.

Hub datasets go through the real `datasets` library, offline, on local folders laid out as hub
dataset repositories (conftest sets HF_HUB_OFFLINE).
"""

import json
import sys
from pathlib import Path

import pytest

from kubetune.spec import DatasetSpec
from kubetune_trainer import synthetic
from kubetune_trainer.data import folds, load_splits, parse_split, to_examples
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


def hub_repo(root: Path, splits: dict[str, list[dict[str, str]]]) -> Path:
    """A folder laid out as a hub dataset repository: data/<split>.jsonl per split."""
    (root / "data").mkdir(parents=True)
    for name, rows in splits.items():
        (root / "data" / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def qa_rows(split: str, n: int) -> list[dict[str, str]]:
    return [{"question": f"{split} q{i}", "answer": f"{split} a{i}"} for i in range(n)]


def test_tests_never_reach_the_hub() -> None:
    import datasets
    import huggingface_hub

    assert datasets.config.HF_HUB_OFFLINE and huggingface_hub.constants.HF_HUB_OFFLINE


def test_hub_style_id_resolves_from_a_local_folder(
    datasets_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_repo(tmp_path / "org" / "qa", {"train": qa_rows("train", 30), "test": qa_rows("test", 8)})
    monkeypatch.chdir(tmp_path)  # "org/qa" is a folder here, as datasets resolves it
    spec = DatasetSpec(path="org/qa", train_split="train[:20]", eval_split="test")
    splits = load_splits(spec)
    assert splits.source == "org/qa" and splits.has_answers
    assert [e.response for e in splits.train] == [f" train a{i}" for i in range(20)]
    assert splits.train[3].prompt == synthetic.format_prompt("train q3")
    assert [e.response for e in splits.eval] == [f" test a{i}" for i in range(8)]
    assert any(datasets_cache.iterdir())  # the real library prepared it, in the test's cache


def test_hub_split_slices_match_local_file_slices(datasets_cache: Path, tmp_path: Path) -> None:
    rows = qa_rows("train", 40)
    repo = hub_repo(tmp_path / "repo", {"train": rows})
    local = tmp_path / "train.jsonl"
    local.write_text((repo / "data" / "train.jsonl").read_text())
    for train, held in [("train[:20]", "train[-5:]"), ("train[50%:]", "train[10%:25%]")]:
        from_hub = load_splits(DatasetSpec(path=str(repo), train_split=train, eval_split=held))
        from_file = load_splits(DatasetSpec(path=str(local), train_split=train, eval_split=held))
        assert from_hub.train == from_file.train and from_hub.eval == from_file.eval
    assert len(from_hub.train) == 20 and len(from_hub.eval) == 6


def test_hub_folder_of_text_files_holds_out_eval(datasets_cache: Path, tmp_path: Path) -> None:
    repo = tmp_path / "corpus"
    repo.mkdir()
    (repo / "train.txt").write_text("".join(f"line {i}\n" for i in range(20)))
    splits = load_splits(DatasetSpec(path=str(repo)))  # the text builder: one row per line
    assert not splits.has_answers
    assert [e.response for e in splits.train] == [f"line {i}" for i in range(18)]
    assert [e.response for e in splits.eval] == ["line 18", "line 19"]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_local_reader_agrees_with_the_json_builder(
    datasets_cache: Path, tmp_path: Path, suffix: str
) -> None:
    import datasets

    rows = [
        {"instruction": f"Do {i}", "input": "x" if i % 2 else "", "output": i} for i in range(9)
    ]
    path = tmp_path / f"data{suffix}"
    text = json.dumps(rows) if suffix == ".json" else "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text)
    spec = DatasetSpec(path=str(path), eval_split="train[6:]")
    built = datasets.load_dataset("json", data_files=str(path), split="train")
    assert to_examples(iter(built), spec) == to_examples(rows, spec)
    assert load_splits(spec).eval == to_examples(rows, spec)[6:]


def test_local_text_reader_agrees_with_the_text_builder(
    datasets_cache: Path, tmp_path: Path
) -> None:
    import datasets

    path = tmp_path / "corpus.txt"
    path.write_text("first\nsecond line\nthird\n")
    built = datasets.load_dataset("text", data_files=str(path), split="train")
    spec = DatasetSpec(path=str(path), train_split="train[:2]", eval_split="train[2:]")
    splits = load_splits(spec)
    assert splits.train + splits.eval == to_examples(iter(built), spec)


@pytest.mark.parametrize(
    ("path", "splits", "message"),
    [
        (
            "org/qa",
            {"eval_split": "validation"},
            "dataset.evalSplit: 'org/qa' has no split 'validation' (splits: test, train)",
        ),
        (
            "org/qa",
            {"train_split": "dev[:20]"},
            "dataset.trainSplit: 'org/qa' has no split 'dev' (splits: test, train)",
        ),
        (
            "org/missing",
            {},
            "dataset.path: cannot load dataset 'org/missing': "
            "Couldn't reach 'org/missing' on the Hub (OfflineModeIsEnabled)",
        ),
        ("org/empty", {}, "dataset.path: cannot load dataset 'org/empty': The directory at "),
        ("org/qa", {"train_split": "train[:1]"}, "dataset.trainSplit: 'org/qa' needs at least 2"),
    ],
)
def test_hub_errors_are_one_line_naming_the_field(
    datasets_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    splits: dict[str, str],
    message: str,
) -> None:
    hub_repo(tmp_path / "org" / "qa", {"train": qa_rows("train", 5), "test": qa_rows("test", 2)})
    (tmp_path / "org" / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_splits(DatasetSpec(path=path, **splits))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_folds_partition_the_data() -> None:
    examples = synthetic.task_split("reverse", "test")[:10]
    parts = folds(examples, 3)
    assert [e for _, held in parts for e in held] == examples
    for train, held in parts:
        assert len(train) + len(held) == 10 and not set(train) & set(held)
    with pytest.raises(ConfigError, match="num_folds: needs at least 3 train examples, got 2"):
        folds(examples[:2], 3)
