from typing import Any

import pytest

from kubetune.spec import (
    CategoricalParameter,
    FloatParameter,
    SpecError,
    TrainerSpec,
    default_parameters,
    effective_spec,
    parse_duration,
    parse_sweep,
)
from kubetune.spec.pod_fields import quantity_bytes
from tests.spec.conftest import manifest


def problems_of(doc: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_sweep(doc)
    return caught.value.problems


def test_design_sketch_parses_with_camel_case_fields() -> None:
    sweep = parse_sweep(
        manifest(
            earlyStopping={"name": "asha", "minSteps": 50, "reductionFactor": 3},
            budget={"maxTrials": 40, "parallelism": 4, "maxFailedTrials": 5, "trialTimeout": "2h"},
        )
    )
    assert sweep.spec.early_stopping.min_steps == 50
    assert sweep.spec.budget.trial_timeout_seconds() == 7200
    lora_r = sweep.spec.parameters[1]
    assert isinstance(lora_r, CategoricalParameter)
    assert lora_r.values == [8, 16] and all(type(v) is int for v in lora_r.values)


@pytest.mark.parametrize(
    ("parameter", "expected"),
    [
        (
            {"name": "lr", "type": "float", "min": 1.0, "max": 0.1},
            "spec.parameters[0].max: must be greater than min",
        ),
        (
            {"name": "lr", "type": "float", "min": 0.0, "max": 1.0, "log": True},
            "spec.parameters[0].min: must be > 0 when log: true",
        ),
        (
            {"name": "r", "type": "categorical", "values": []},
            "spec.parameters[0].values: must not be empty",
        ),
        (
            {"name": "lora rank", "type": "int", "min": 1, "max": 4},
            "spec.parameters[0].name: must match",
        ),
        (
            {"name": "class", "type": "int", "min": 1, "max": 4},
            "spec.parameters[0].name: must be an identifier",
        ),
        (
            {"name": "r", "type": "int", "min": 1, "max": 64, "log": True, "step": 2},
            "spec.parameters[0].step",
        ),
        ({"name": "r", "type": "fancy", "min": 1, "max": 4}, "spec.parameters[0]"),
        (
            {"name": "r", "type": "categorical", "values": [1, 1]},
            "spec.parameters[0].values: must be unique",
        ),
    ],
)
def test_bad_parameters_name_the_field_and_rule(parameter: dict[str, Any], expected: str) -> None:
    problems = problems_of(manifest(parameters=[parameter]))
    assert any(p.startswith(expected) for p in problems), problems


def test_duplicate_parameter_names() -> None:
    param = {"name": "lr", "type": "float", "min": 0.1, "max": 1.0}
    assert problems_of(manifest(parameters=[param, param])) == [
        "spec.parameters[1].name: duplicate parameter name 'lr'"
    ]


def test_grid_over_continuous_range_needs_a_step() -> None:
    problems = problems_of(
        manifest(
            algorithm={"name": "grid"},
            parameters=[{"name": "lr", "type": "float", "min": 0.1, "max": 1.0}],
        )
    )
    assert problems == [
        "spec.parameters[0].step: grid search needs a step for the float range 'lr'"
    ]


def test_grid_size_counts_every_point() -> None:
    sweep = parse_sweep(
        manifest(
            algorithm={"name": "grid"},
            parameters=[
                {"name": "lr", "type": "float", "min": 0.1, "max": 0.5, "step": 0.1},
                {"name": "r", "type": "int", "min": 8, "max": 32, "step": 8},
                {"name": "packing", "type": "categorical", "values": [True, False]},
            ],
        )
    )
    assert sweep.spec.grid_points() == 5 * 4 * 2


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"budget": {"maxTrials": 2, "parallelism": 4}},
            "spec.budget.parallelism: must be <= budget.maxTrials",
        ),
        ({"budget": {"maxTrials": -1}}, "spec.budget.maxTrials: must be >= 1"),
        ({"budget": {"maxFailedTrials": -3}}, "spec.budget.maxFailedTrials: must be >= 0"),
        ({"budget": {"trialTimeout": "two hours"}}, "spec.budget.trialTimeout: must match"),
        ({"algorithm": {"name": "bayes"}}, "spec.algorithm.name: must be one of"),
        (
            {"earlyStopping": {"name": "asha", "reductionFactor": 1}},
            "spec.earlyStopping.reductionFactor",
        ),
        (
            {"template": {"spec": {"containers": []}}},
            "spec.trainer: set exactly one of trainer, template or workload",
        ),
        ({"trainer": None}, "spec.trainer: set exactly one of trainer, template or workload"),
        (
            {"trainer": {"maxSteps": 10, "evalEvery": 20}},
            "spec.trainer.evalEvery: must be <= trainer.maxSteps",
        ),
        ({"trainer": {"method": "prefix"}}, "spec.trainer.method: must be one of"),
        ({"trainer": {"modle": "tiny"}}, "spec.trainer.modle: unknown field"),
        (
            {"trainer": {"env": [{"name": "KUBETUNE_PARAMS", "value": "x"}]}},
            "spec.trainer.env[0].name: KUBETUNE_* variables are set by kubetune",
        ),
        (
            {"trainer": {"shmSize": "16GB"}},
            "spec.trainer.shmSize: must be a Kubernetes quantity such as 16Gi, got '16GB'",
        ),
        ({"trainer": {"shmSize": "0Gi"}}, "spec.trainer.shmSize: must be more than 0"),
        (
            {"trainer": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exist"}]}},
            "spec.trainer.tolerations[0].operator: must be one of 'Exists' or 'Equal'",
        ),
        (
            {"trainer": {"tolerations": [{"operator": "Equal", "value": "x"}]}},
            "spec.trainer.tolerations[0].operator: must be Exists when key is empty",
        ),
        (
            {"trainer": {"tolerations": [{"key": "k", "tolerationSeconds": 30}]}},
            "spec.trainer.tolerations[0].effect: must be NoExecute when tolerationSeconds",
        ),
        (
            {"trainer": {"volumeMounts": [{"name": "out", "mountPath": "/out"}]}},
            "spec.trainer.volumeMounts[0].name: no volume named 'out' in trainer.volumes",
        ),
        (
            {"trainer": {"volumes": [{"name": "out"}]}},
            "spec.trainer.volumes[0]: needs exactly one volume source",
        ),
        (
            {"trainer": {"volumes": [{"name": "Out", "emptyDir": {}}]}},
            "spec.trainer.volumes[0].name: required, a DNS label",
        ),
        (
            {
                "trainer": {
                    "shmSize": "1Gi",
                    "volumes": [{"name": "shm", "emptyDir": {}}],
                    "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],
                }
            },
            "spec.trainer.volumeMounts[0].mountPath: shmSize already mounts /dev/shm",
        ),
        (
            {"trainer": {"nodeSelector": {"pool": "gpu nodes"}}},
            "spec.trainer.nodeSelector: 'pool': a label value must be",
        ),
        (
            {"trainer": {"labels": {"Example.com/team": "nlp"}}},
            "spec.trainer.labels: 'Example.com/team': the prefix before / must be",
        ),
        ({"trainer": {"imagePullSecrets": ["ghcr"]}}, "spec.trainer.imagePullSecrets[0]"),
        ({"queueName": "Team GPU"}, "spec.queueName: must match"),
        (
            {"objectives": [{"metric": "eval_loss"}]},
            "spec.objectives: set either objective or objectives",
        ),
        (
            {"objective": None, "objectives": [{"metric": "eval_loss"}]},
            "spec.objectives: needs two or more",
        ),
        (
            {"metrics": {"prometheus": {"url": "prometheus:9090"}}},
            "spec.metrics.prometheus.url: must match",
        ),
    ],
)
def test_bad_spec_fields(changes: dict[str, Any], expected: str) -> None:
    problems = problems_of(manifest(**changes))
    assert any(p.startswith(expected) for p in problems), problems


@pytest.mark.parametrize(
    ("size", "size_bytes"),
    [("16Gi", 16 * 2**30), ("500M", 500 * 10**6), ("0.5Gi", 2**29), ("1e9", 10**9), (64, 64)],
)
def test_shm_size_takes_kubernetes_quantities(size: int | str, size_bytes: int) -> None:
    sweep = parse_sweep(manifest(trainer={"shmSize": size}))
    assert sweep.spec.trainer is not None and sweep.spec.trainer.shm_size == size
    assert quantity_bytes(size) == size_bytes


MO_OBJECTIVES = [
    {"metric": "eval_loss"},
    {"metric": "tokens_per_second", "direction": "maximize"},
]


def test_multi_objective_prunes_with_asha_only() -> None:
    parse_sweep(manifest(objective=None, objectives=MO_OBJECTIVES, earlyStopping={"name": "asha"}))
    for name in ("median", "hyperband"):
        problems = problems_of(
            manifest(objective=None, objectives=MO_OBJECTIVES, earlyStopping={"name": name})
        )
        assert problems[0].startswith(
            "spec.earlyStopping.name: a multi-objective sweep prunes with asha"
        ), problems


def test_multi_objective_pruning_refuses_gpu_hours_and_forecast() -> None:
    # gpu_hours has no intermediate values: ranking on the loss alone would stop the cheap
    # trials the front needs.
    problems = problems_of(
        manifest(
            objective=None,
            objectives=[{"metric": "eval_loss"}, {"metric": "gpu_hours"}],
            earlyStopping={"name": "asha"},
        )
    )
    assert problems[0].startswith("spec.objectives[1].metric: gpu_hours has no intermediate")
    problems = problems_of(
        manifest(
            objective=None,
            objectives=MO_OBJECTIVES,
            earlyStopping={"name": "asha", "forecast": True},
        )
    )
    assert problems[0].startswith("spec.earlyStopping.forecast: not for a multi-objective")


@pytest.mark.parametrize(
    ("early", "expected"),
    [
        (
            {"name": "median", "forecast": True},
            "spec.earlyStopping.forecast: only with auto, asha or hyperband",
        ),
        ({"name": "asha", "maxSteps": 100}, "spec.earlyStopping.maxSteps: only with forecast"),
    ],
)
def test_forecast_rules(early: dict[str, object], expected: str) -> None:
    assert problems_of(manifest(earlyStopping=early))[0].startswith(expected)


def test_forecast_needs_a_last_step_without_the_trainer() -> None:
    template = {"spec": {"containers": [{"name": "t", "image": "x"}]}}
    params = [{"name": "lr", "type": "float", "min": 0.1, "max": 0.5}]
    early = {"name": "asha", "forecast": True}
    doc = manifest(trainer=None, template=template, parameters=params, earlyStopping=early)
    assert problems_of(doc)[0].startswith("spec.earlyStopping.maxSteps: required with forecast")
    doc["spec"]["earlyStopping"]["maxSteps"] = 1000
    parse_sweep(doc)
    parse_sweep(manifest(earlyStopping=early))  # trainer.maxSteps is the last step


def test_sweep_name_must_fit_trial_pod_labels() -> None:
    doc = manifest()
    doc["metadata"]["name"] = "x" * 58
    assert problems_of(doc)[0].startswith("metadata.name")
    doc["metadata"]["name"] = "Not_DNS"
    assert problems_of(doc)[0].startswith("metadata.name: must match")


def test_kind_and_api_version_are_checked() -> None:
    doc = manifest()
    doc["kind"] = "Experiment"
    assert problems_of(doc) == ["kind: must be HyperparameterSweep, got 'Experiment'"]
    doc = manifest()
    doc["apiVersion"] = "kubeflow.org/v1beta1"
    assert problems_of(doc)[0].startswith("apiVersion: must be kubetune.dev/v1alpha1")


def test_default_search_space_when_parameters_are_omitted() -> None:
    sweep = parse_sweep(manifest(parameters=None, objective=None))
    spec = effective_spec(sweep.spec)
    names = [p.name for p in spec.parameters]
    assert names == ["learning_rate", "lora_r", "lora_dropout", "warmup_ratio"]
    lr = spec.parameters[0]
    assert isinstance(lr, FloatParameter) and lr.log and lr.min == 5e-5 and lr.max == 5e-4
    assert spec.objective is not None and spec.objective.metric == "eval_loss"
    assert spec.objective.direction == "minimize"


def test_default_search_space_depends_on_method_and_mode() -> None:
    full = [p.name for p in default_parameters(TrainerSpec(method="full"))]
    assert "lora_r" not in full and "learning_rate" in full
    decoding = [p.name for p in default_parameters(TrainerSpec(mode="generate"))]
    assert {"temperature", "top_p", "top_k"} <= set(decoding)


def test_effective_spec_keeps_explicit_parameters() -> None:
    sweep = parse_sweep(manifest())
    assert effective_spec(sweep.spec).parameters == sweep.spec.parameters


def test_template_needs_explicit_parameters() -> None:
    problems = problems_of(
        manifest(
            trainer=None, parameters=None, template={"spec": {"containers": [{"name": "main"}]}}
        )
    )
    assert problems == [
        "spec.parameters: required with template (there is no default search space)"
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h30m", 5400), ("250ms", 0.25)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2 hours", "h", "-5s", "5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="must be a duration"):
        parse_duration(text)


def test_objective_target_reached_respects_direction() -> None:
    sweep = parse_sweep(
        manifest(objective={"metric": "eval_accuracy", "direction": "maximize", "target": 0.9})
    )
    objective = sweep.spec.objective_list[0]
    assert objective.reached(0.95) and not objective.reached(0.5)


# ---- metric names, strategies, additional metrics ---------------------------------------

TEMPLATE = {"spec": {"containers": [{"name": "t", "image": "i"}]}}


@pytest.mark.parametrize("name", ["Validation-accuracy", "val/loss", "eval.loss", "_x1"])
def test_metric_names_may_hold_dash_dot_and_slash(name: str) -> None:
    sweep = parse_sweep(
        manifest(
            objective={"metric": name, "strategy": "max"},
            additionalMetrics=[f"{name}2"],
            trainer=None,
            template=TEMPLATE,
        )
    )
    assert sweep.spec.objective_list[0].metric == name
    assert sweep.spec.objective_list[0].strategy == "max"
    assert sweep.spec.additional_metrics == [f"{name}2"]


@pytest.mark.parametrize("name", ["1abc", "val loss", "a{b}", "a,b", "x" * 64, ""])
def test_bad_metric_names_are_refused_naming_the_field(name: str) -> None:
    assert any(
        p.startswith("spec.objective.metric")
        for p in problems_of(manifest(objective={"metric": name}))
    )
    assert any(
        p.startswith("spec.additionalMetrics[0]: ")
        for p in problems_of(manifest(additionalMetrics=[name]))
    )


def test_strategy_must_be_final_min_or_max() -> None:
    assert any(
        "spec.objective.strategy" in p
        for p in problems_of(manifest(objective={"metric": "eval_loss", "strategy": "mean"}))
    )


def test_names_mapping_to_one_series_are_refused() -> None:
    clash = problems_of(manifest(additionalMetrics=["eval-loss"]))
    assert any(
        "additionalMetrics[0]: 'eval-loss' maps to the series kubetune_trial_eval_loss, as "
        "objective.metric 'eval_loss' does" in p
        for p in clash
    )
    two = [{"metric": "val/loss"}, {"metric": "val.loss", "direction": "maximize"}]
    assert any(
        "objectives[1].metric: 'val.loss'" in p
        for p in problems_of(manifest(objectives=two, objective=None))
    )


def test_at_most_four_additional_metrics() -> None:
    four = [f"m{i}" for i in range(4)]
    assert parse_sweep(manifest(additionalMetrics=four, trainer=None, template=TEMPLATE))
    names = [f"m{i}" for i in range(5)]
    assert any(
        "spec.additionalMetrics" in p for p in problems_of(manifest(additionalMetrics=names))
    )


def test_additional_metrics_of_a_trainer_sweep_must_be_reported_by_it() -> None:
    from kubetune.spec.checks import objective_problems

    ok = parse_sweep(manifest(additionalMetrics=["eval_accuracy", "train_loss"]))
    assert objective_problems(effective_spec(ok.spec)) == []
    bad = parse_sweep(manifest(additionalMetrics=["val/acc"]))
    assert objective_problems(effective_spec(bad.spec)) == [
        "spec.additionalMetrics[0]: the built-in trainer does not report 'val/acc'; in train "
        "mode it reports eval_loss, eval_accuracy, train_loss, learning_rate, grad_norm, "
        "tokens_per_second"
    ]


def test_strategy_is_part_of_the_study_and_additional_metrics_are_not() -> None:
    from kubetune.spec.identity import study_changes, study_digest

    base = parse_sweep(manifest()).spec
    maxed = parse_sweep(manifest(objective={"metric": "eval_loss", "strategy": "max"})).spec
    assert study_changes(base, maxed) == ["spec.objective"]
    more = parse_sweep(manifest(additionalMetrics=["eval_accuracy"])).spec
    assert study_changes(base, more) == []
    # A sweep started before strategy existed keeps its digest.
    final = parse_sweep(manifest(objective={"metric": "eval_loss", "strategy": "final"})).spec
    assert study_digest(final) == study_digest(base)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"budget": {"maxGpuHours": 0}}, "spec.budget.maxGpuHours: must be > 0"),
        ({"budget": {"maxGpuHours": -2.5}}, "spec.budget.maxGpuHours: must be > 0"),
        (
            {"objective": {"metric": "gpu_hours"}},
            "spec.objective.metric: gpu_hours is a cost",
        ),
        (
            {
                "objective": None,
                "objectives": [
                    {"metric": "eval_loss"},
                    {"metric": "gpu_hours", "direction": "maximize"},
                ],
            },
            "spec.objectives[1].direction: gpu_hours must be minimize",
        ),
        (
            {
                "objective": None,
                "objectives": [
                    {"metric": "eval_loss"},
                    {"metric": "gpu_hours", "query": "sum(x)"},
                ],
            },
            "spec.objectives[1].query: gpu_hours is computed by kubetune",
        ),
    ],
)
def test_gpu_budget_and_gpu_hours_objective_rules(changes: dict[str, Any], expected: str) -> None:
    problems = problems_of(manifest(**changes))
    assert any(p.startswith(expected) for p in problems), problems


def test_gpu_budget_and_gpu_hours_objective_are_accepted() -> None:
    sweep = parse_sweep(
        manifest(
            budget={"maxGpuHours": 0.5},
            objective=None,
            objectives=[{"metric": "eval_loss"}, {"metric": "gpu_hours"}],
        )
    )
    assert sweep.spec.budget.max_gpu_hours == 0.5
