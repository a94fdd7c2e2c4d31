"""Specs that parse but cannot work: refused by `kubetune validate`, `kubetune run` and the operator.

Each test reproduces a reported failure: a sweep that was accepted and then failed (or hung)
at run time.
"""

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune import metric_names
from kubetune.cli import main
from kubetune.spec import SpecError, effective_spec, parse_sweep
from kubetune.spec.checks import semantic_problems, semantic_warnings
from kubetune.spec.parameters import MAX_CHOICES, first_duplicate
from kubetune.spec.sweep import MAX_GRID_POINTS
from tests.spec.conftest import manifest

Write = Callable[[Any], Path]


def problems(doc: dict[str, Any], *, for_cluster: bool = True) -> list[str]:
    """Every problem: the models' own, else the semantic checks'."""
    try:
        sweep = parse_sweep(doc)
    except SpecError as error:
        return error.problems
    return semantic_problems(sweep, for_cluster=for_cluster)


def template_manifest(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    doc = manifest(
        trainer=None,
        parameters=[{"name": "lr", "type": "float", "min": 1e-4, "max": 1e-2, "log": True}],
        template={"spec": {"containers": containers}},
    )
    doc["spec"].update(spec)
    return doc


# ---- objective metric of a built-in-trainer sweep ----------------------------------------


def test_misspelled_objective_is_refused_with_a_suggestion(
    write_manifest: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_manifest(manifest(objective={"metric": "eval_los", "direction": "minimize"}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{path}: spec.objective.metric: the built-in trainer does not report 'eval_los' "
        "(did you mean eval_loss?); in train mode it reports eval_loss, eval_accuracy, "
        "train_loss, learning_rate, grad_norm, tokens_per_second"
    ]


def test_each_objective_of_a_multi_objective_sweep_is_checked() -> None:
    doc = manifest(
        objective=None,
        objectives=[
            {"metric": "eval_loss"},
            {"metric": "tokens_per_sec", "direction": "maximize"},
        ],
    )
    [problem] = problems(doc)
    assert problem.startswith("spec.objectives[1].metric: the built-in trainer does not report")
    assert "(did you mean tokens_per_second?)" in problem


def test_every_reported_metric_is_accepted_with_or_without_the_series_prefix() -> None:
    for name in metric_names.trainer_objectives("train"):
        assert problems(manifest(objective={"metric": name})) == [], name
    assert problems(manifest(objective={"metric": metric_names.EVAL_LOSS})) == []


def test_unrelated_metric_gets_no_guess() -> None:
    [problem] = problems(manifest(objective={"metric": "bleu"}))
    assert "does not report 'bleu';" in problem and "did you mean" not in problem


def test_custom_query_objective_is_exempt() -> None:
    query = "kubetune_trial_eval_loss{{trial='{trial}'}} / kubetune_trial_train_loss"
    doc = manifest(objective={"metric": "loss_ratio", "query": query})
    assert problems(doc) == []


def test_template_objective_is_the_programs_own_business() -> None:
    doc = template_manifest(
        [{"name": "t", "image": "i", "args": ["${params.lr}"]}],
        objective={"metric": "bleu", "direction": "maximize"},
    )
    assert problems(doc) == []


def test_generate_mode_reports_accuracy_only_and_defaults_to_it() -> None:
    generate = {"mode": "generate", "maxSteps": 1, "evalEvery": 1}
    doc = manifest(trainer=generate, objective=None, parameters=None)
    assert problems(doc) == []
    objective = effective_spec(parse_sweep(doc).spec).objective
    assert objective is not None
    assert (objective.metric, objective.direction) == ("eval_accuracy", "maximize")
    [problem] = problems(manifest(trainer=generate, objective={"metric": "eval_loss"}))
    assert problem.endswith("in generate mode it reports eval_accuracy")


# ---- template containers: images and placeholders ----------------------------------------


def test_every_template_container_needs_an_image(
    write_manifest: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = template_manifest(
        [{"name": "t", "image": "i", "args": ["${params.lr}"]}, {"name": "side", "image": " "}]
    )
    doc["spec"]["template"]["spec"]["initContainers"] = [{"name": "fetch"}]
    path = write_manifest(doc)
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: spec.template.spec.initContainers[0].image: required "
        "(every container of a trial pod needs an image)",
        f"{path}: spec.template.spec.containers[1].image: required "
        "(every container of a trial pod needs an image)",
    ]


def test_local_runs_need_no_image() -> None:
    doc = template_manifest([{"name": "t", "command": ["python"], "args": ["${params.lr}"]}])
    assert problems(doc, for_cluster=False) == []
    assert problems(doc) == [
        "spec.template.spec.containers[0].image: required "
        "(every container of a trial pod needs an image)"
    ]


def test_placeholder_naming_no_parameter_is_an_error_at_its_field() -> None:
    doc = template_manifest(
        [
            {
                "name": "t",
                "image": "i",
                "args": ["--lr=${params.lr}", "--wd=${params.weight_decay}"],
                "env": [{"name": "R", "value": "${params.rank}"}],
            }
        ]
    )
    doc["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "prep", "image": "i", "command": ["echo", "${params.}"]}
    ]
    assert problems(doc) == [
        "spec.template.spec.initContainers[0].command[1]: ${params.} names no parameter "
        "(known: lr)",
        "spec.template.spec.containers[0].args[1]: ${params.weight_decay} names no parameter "
        "(known: lr)",
        "spec.template.spec.containers[0].env[0].value: ${params.rank} names no parameter "
        "(known: lr)",
    ]


def test_command_that_is_not_a_list_is_named() -> None:
    doc = template_manifest([{"name": "t", "image": "i", "command": "python train.py"}])
    assert problems(doc) == ["spec.template.spec.containers[0].command: must be a list of strings"]


def test_unused_parameter_is_a_warning_and_validate_still_passes(
    write_manifest: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = template_manifest([{"name": "t", "image": "i", "args": ["${params.lr}"]}])
    doc["spec"]["parameters"].append({"name": "wd", "type": "float", "min": 0.0, "max": 0.1})
    path = write_manifest(doc)
    assert main(["validate", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"{path}: demo: valid" in captured.out
    assert captured.err.splitlines() == [
        f"{path}: warning: spec.parameters[1].name: 'wd' appears in no ${{params.wd}} "
        "placeholder; fine if the program reads KUBETUNE_PARAMS, else it does nothing"
    ]
    assert semantic_warnings(parse_sweep(manifest())) == []  # trainer sweeps: no placeholders


# ---- metrics.interval --------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["0s", "0ms", "999ms", "0.5s"])
def test_metrics_interval_below_a_second_is_refused(interval: str) -> None:
    assert problems(manifest(metrics={"interval": interval})) == [
        f"spec.metrics.interval: must be at least 1s, got {interval!r} (trials are read this "
        "often; shorter would poll the metrics source in a busy loop)"
    ]


@pytest.mark.parametrize("interval", ["1s", "1000ms", "0.5s500ms", "1m"])
def test_metrics_interval_of_a_second_or_more_is_fine(interval: str) -> None:
    assert problems(manifest(metrics={"interval": interval})) == []


# ---- categorical values: duplicates, size ------------------------------------------------


@pytest.mark.parametrize(
    ("values", "duplicate"),
    [
        ([1, True, 1.0, "1", 0, False, 0.0, "0"], None),  # equal under ==, different types
        ([1, 2, 1], 1),
        ([True, 1, True], True),
        ([0.0, -0.0], -0.0),  # the same number
        (["a", "b", "a"], "a"),
        ([math.nan, math.nan], None),  # NaN equals nothing, itself included
    ],
)
def test_duplicate_rule_compares_value_and_type(values: list[Any], duplicate: Any) -> None:
    found = first_duplicate(values)
    assert (found is None) == (duplicate is None)
    if duplicate is not None:
        assert type(found) is type(duplicate) and found == duplicate


def test_duplicate_found_in_a_long_list() -> None:
    values: list[Any] = [f"v{i}" for i in range(50_000)] + ["v49999"]
    assert first_duplicate(values) == "v49999"
    assert first_duplicate(values[:-1]) is None


def test_categorical_of_max_choices_is_valid_and_one_more_is_refused_clearly() -> None:
    def doc(count: int) -> dict[str, Any]:
        values = [f"choice-{i}" for i in range(count)]
        return template_manifest(
            [{"name": "t", "image": "i", "args": ["${params.c}"]}],
            parameters=[{"name": "c", "type": "categorical", "values": values}],
        )

    assert problems(doc(MAX_CHOICES)) == []
    assert problems(doc(MAX_CHOICES + 1)) == [
        f"spec.parameters[0].values: must have at most {MAX_CHOICES} entries, got {MAX_CHOICES + 1}"
    ]
    assert problems(doc(200_000)) == [
        f"spec.parameters[0].values: must have at most {MAX_CHOICES} entries, got 200000"
    ]


def test_huge_grid_is_refused_before_optuna_holds_it() -> None:
    big = {"name": "warmup_steps", "type": "int", "min": 0, "max": MAX_GRID_POINTS}
    [problem] = problems(manifest(algorithm={"name": "grid"}, parameters=[big]))
    assert problem.startswith(
        f"spec.algorithm.name: grid search holds every grid point in memory, and this grid "
        f"has {MAX_GRID_POINTS + 1} (at most {MAX_GRID_POINTS})"
    )
    big["max"] = MAX_GRID_POINTS - 1
    assert problems(manifest(algorithm={"name": "grid"}, parameters=[big])) == []


# ---- sweep names -------------------------------------------------------------------------


def test_name_too_long_for_its_trial_pods_is_explained() -> None:
    doc = manifest()
    doc["metadata"]["name"] = "n" * 58
    assert problems(doc) == [
        "metadata.name: too long (58 characters): the pod name <sweep>-tNNNN must fit in 63 "
        "characters, and so must the kubetune.dev/trial label value that carries it, but "
        f"'{'n' * 58}-t0007' has 64; use at most 57 characters"
    ]
    doc["metadata"]["name"] = "n" * 57
    doc["spec"]["budget"] = {"maxTrials": 10_000, "parallelism": 1}
    assert problems(doc) == []  # n...n-t9999: exactly 63


# ---- multi-document files ----------------------------------------------------------------


def _multi(tmp_path: Path, *docs: Any) -> Path:
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    return path


def named(name: str, **spec: Any) -> dict[str, Any]:
    doc = manifest(**spec)
    doc["metadata"]["name"] = name
    return doc


CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}


def test_multi_document_file_is_checked_sweep_by_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _multi(
        tmp_path,
        named("a"),
        CONFIG_MAP,
        named("b", objective={"metric": "eval_los"}),
        named("c", metrics={"interval": "0s"}),
    )
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{path}: document 2 (cfg): skipped, kind ConfigMap is not HyperparameterSweep",
        f"{path}: document 1 (a): valid",
    ]
    err = captured.err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"{path}: document 3 (b): spec.objective.metric:")
    assert err[1].startswith(f"{path}: document 4 (c): spec.metrics.interval:")


def test_multi_document_file_of_valid_sweeps_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _multi(tmp_path, named("a"), named("b"))
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: document 1 (a): valid",
        f"{path}: document 2 (b): valid",
    ]


def test_broken_sweep_document_is_not_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = named("t")
    typo["kind"] = "HyperparameterSweeps"  # kubetune's API group: meant as a sweep
    path = _multi(tmp_path, named("a"), typo, ["not", "a", "mapping"])
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: document 2 (t): kind: must be HyperparameterSweep, got 'HyperparameterSweeps'",
        f"{path}: document 3: the document must be a mapping (a Kubernetes object)",
    ]


def test_file_without_any_sweep_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _multi(tmp_path, CONFIG_MAP, {**CONFIG_MAP, "kind": "Secret"})
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: no HyperparameterSweep among its 2 documents (ConfigMap, Secret)"
    ]


# ---- metrics.logs ----------------------------------------------------------------------


LOG_CONTAINER = [{"name": "main", "image": "python:3.12", "command": ["python", "t.py"]}]


def test_a_log_sweep_with_defaults_is_accepted() -> None:
    doc = template_manifest(LOG_CONTAINER, metrics={"logs": {}})
    assert problems(doc) == []
    logs = parse_sweep(doc).spec.metrics.logs
    assert logs is not None and logs.format == "text" and logs.filter is None


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        ({"filter": "(only)"}, "spec.metrics.logs.filter: needs two groups"),
        ({"filter": r"(?=a)(b)(c)"}, "spec.metrics.logs.filter: not an RE2 regular expression"),
        ({"format": "json", "filter": "(a)=(b)"}, "filter: only with format text"),
        ({"format": "yaml"}, "metrics.logs.format"),
        ({"stepKey": "bad key"}, "metrics.logs.stepKey"),
    ],
)
def test_bad_log_settings_are_refused_naming_the_field(logs: dict[str, Any], expected: str) -> None:
    found = problems(template_manifest(LOG_CONTAINER, metrics={"logs": logs}))
    assert any(expected in problem for problem in found), found


def test_logs_exclude_prometheus_queries_and_the_built_in_trainer() -> None:
    both = template_manifest(
        LOG_CONTAINER, metrics={"logs": {}, "prometheus": {"url": "http://prom:9090"}}
    )
    assert any("set either metrics.logs or metrics.prometheus" in p for p in problems(both))
    query = template_manifest(
        LOG_CONTAINER,
        metrics={"logs": {}},
        objective={"metric": "loss", "query": "kubetune_trial_loss{trial='{trial}'}"},
    )
    assert any("objective.query: a PromQL query needs" in p for p in problems(query))
    trainer = manifest(metrics={"logs": {}})
    assert any("metrics.logs: only with template" in p for p in problems(trainer))
