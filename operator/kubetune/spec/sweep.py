"""The HyperparameterSweep spec: what to search, how, and with what budget."""

import math
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from kubetune.metric_names import GPU_HOURS_OBJECTIVE, series_collisions
from kubetune.spec.durations import DURATION_PATTERN, parse_duration
from kubetune.spec.parameters import (
    MAX_TRIALS,
    Parameter,
    SpecModel,
    grid_size,
)
from kubetune.spec.pod_fields import DNS_LABEL_MAX
from kubetune.spec.trainer import TemplateSpec, TrainerSpec, WorkloadSpec

Direction = Literal["minimize", "maximize"]
AlgorithmName = Literal["auto", "tpe", "random", "grid", "gp", "cmaes", "qmc", "nsga2"]
PrunerName = Literal["auto", "none", "median", "asha", "hyperband"]
PrunedTrials = Literal["all", "startup"]
# Algorithms that run startup trials (space-filling points) before a model suggests.
STARTUP_ALGORITHMS = ("auto", "tpe", "gp", "cmaes")
# Which of a trial's reports is its value: the last, or the best-looking of all.
Strategy = Literal["final", "min", "max"]

# A metric name as trainers write it: Validation-accuracy, val/loss and eval.loss too. Its
# Prometheus series is metric_names.trial_metric(name) (other characters become _).
METRIC_NAME_PATTERN = r"^[a-zA-Z_][a-zA-Z0-9_./-]*$"
MAX_METRIC_NAME = 63
# spec.additionalMetrics: recorded with every trial in status, which must stay under 1 MiB
# at 10,000 trials; four names of 63 characters with incompressible values take it from
# 0.53 to 0.86 MiB (tests/operator/test_status_size.py), ten would pass 1.3 MiB.
MAX_ADDITIONAL_METRICS = 4
MetricName = Annotated[str, Field(pattern=METRIC_NAME_PATTERN, max_length=MAX_METRIC_NAME)]
# Floor of metrics.interval: the operator and `kubetune run` read running trials this often.
MIN_INTERVAL = "1s"
# Optuna's GridSampler holds every grid point in memory (and shuffles them all) when a grid
# sweep starts: ten times the most trials a sweep can run is plenty, and stays small.
MAX_GRID_POINTS = 10 * MAX_TRIALS


class Objective(SpecModel):
    """A metric the trials report and the direction that makes it better."""

    metric: str = Field(
        default="eval_loss",
        pattern=METRIC_NAME_PATTERN,
        max_length=MAX_METRIC_NAME,
        description=(
            "Metric name the trial reports, e.g. eval_loss or val/loss (series "
            "kubetune_trial_<name>, every character outside [a-zA-Z0-9_] replaced by _)."
        ),
    )
    direction: Direction = "minimize"
    strategy: Strategy = Field(
        default="final",
        description=(
            "Which report is the trial's value: final (its last), min or max (the least or "
            "greatest of its evaluations, with the step of that evaluation)."
        ),
    )
    target: float | None = Field(
        default=None, description="End the sweep once a trial reaches this value."
    )
    query: str | None = Field(
        default=None,
        description=(
            "PromQL template for a custom trainer; {sweep}, {trial} and {namespace} are "
            "substituted. Default: the kubetune_trial_<metric> series of the trial."
        ),
    )

    def reached(self, value: float) -> bool:
        if self.target is None:
            return False
        return value <= self.target if self.direction == "minimize" else value >= self.target


class Algorithm(SpecModel):
    """The sampler that proposes new trials."""

    name: AlgorithmName = Field(
        default="auto",
        description=(
            "auto (default): a Gaussian process for small numeric single-objective spaces "
            "(<= 12 parameters, categoricals <= 8 choices) up to trial 300, else TPE."
        ),
    )
    seed: int | None = Field(default=None, ge=0)
    startup_trials: int | None = Field(
        default=None, ge=0, description="Random trials before the model-based sampler takes over."
    )


class EarlyStopping(SpecModel):
    """The pruner that stops losing trials early."""

    name: PrunerName = Field(
        default="auto",
        description=(
            "auto (the default): asha with forecasts, its first rung at 1/8 of the run, when "
            "the last step is known (trainer.maxSteps or maxSteps), for one objective: on "
            "every trial with 4 or more at once, on the startup trials alone below that (with "
            "an algorithm that has them); else none (README: earlyStopping.name: auto)."
        ),
    )
    min_steps: int = Field(
        default=1,
        ge=1,
        description="Steps a trial runs before it can be stopped (ASHA min resource).",
    )
    reduction_factor: int = Field(
        default=3,
        ge=2,
        description=(
            "ASHA / Hyperband halving rate: rungs at minSteps x reductionFactor^k up to half "
            "the run; a trial that passes the last one runs to the end."
        ),
    )
    startup_trials: int = Field(
        default=5, ge=0, description="median: trials that complete before any is pruned."
    )
    forecast: bool = Field(
        default=False,
        description=(
            "asha, hyperband: rank trials at each rung by a forecast of their value at the last "
            "step (a fit of c + a*exp(-step/tau) to the values so far) rather than their value "
            "at the rung, so a slow starter that ends best is kept. Needs four evaluations by "
            "the first rung (else that rung ranks by value) and the last step: trainer.maxSteps "
            "or maxSteps."
        ),
    )
    max_steps: int | None = Field(
        default=None,
        ge=1,
        description=(
            "forecast: the step trials end at, where forecasts aim (default trainer.maxSteps; "
            "needed with template or workload trials)."
        ),
    )
    trials: PrunedTrials = Field(
        default="all",
        description=(
            "Which trials may be stopped: all, or startup: only the algorithm's startup trials "
            "(its space-filling points before the model suggests; auto, tpe, gp, cmaes), so "
            "every trial the model suggests runs to the end and the model learns from it."
        ),
    )


class Budget(SpecModel):
    """How many trials, how many at once, and when to give up."""

    max_trials: int = Field(default=20, ge=1, le=MAX_TRIALS)
    parallelism: int = Field(default=1, ge=1, le=1000)
    max_failed_trials: int = Field(default=3, ge=0)
    max_requeues: int = Field(
        default=3,
        ge=0,
        le=100,
        description=(
            "Reruns of one trial after the cluster took it away (eviction, preemption, node "
            "loss); one more disruption fails it. kubetune's own stops (suspend) do not count."
        ),
    )
    trial_timeout: str | None = Field(
        default=None, pattern=DURATION_PATTERN, description="e.g. 30m or 2h; a trial past it fails."
    )
    max_gpu_hours: float | None = Field(
        default=None,
        gt=0,
        description=(
            "GPU-hours the sweep may spend (GPUs a trial pod requests x its running time, every "
            "attempt). No trial starts that would cross it at the mean cost of the finished "
            "trials; trials already running finish; the sweep ends (GpuBudgetSpent) when it is "
            "spent or no further trial fits."
        ),
    )

    def trial_timeout_seconds(self) -> float | None:
        return None if self.trial_timeout is None else parse_duration(self.trial_timeout)


class PrometheusSettings(SpecModel):
    url: str = Field(pattern=r"^https?://", description="Prometheus base URL.")


class ScrapeSettings(SpecModel):
    port: int = Field(default=9400, ge=1, le=65535, description="Trial metrics port.")
    path: str = Field(default="/metrics", pattern=r"^/")


class LogSettings(SpecModel):
    """Metrics read from the trial's log (stdout and stderr) instead of Prometheus or scrape."""

    format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "text: name=value pairs matched by filter (Katib's default filter when unset); "
            "json: one JSON object per line, every numeric field a metric."
        ),
    )
    filter: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description=(
            "text only: an RE2 regular expression whose first group is the metric's name and "
            "second its value. Default: Katib's ([\\w|-]+)\\s*=\\s*"
            "([+-]?\\d*(\\.\\d+)?([Ee][+-]?\\d+)?)."
        ),
    )
    step_key: str | None = Field(
        default=None,
        pattern=METRIC_NAME_PATTERN,
        max_length=MAX_METRIC_NAME,
        description=(
            "Name whose value is the step of the metrics reported with it. Default: step, "
            "global_step or epoch; without one, a metric's nth report is step n."
        ),
    )

    @model_validator(mode="after")
    def _filter_is_text(self) -> "LogSettings":
        if self.filter is not None and self.format != "text":
            raise ValueError("filter: only with format text (json lines need no filter)")
        return self


class MetricsSpec(SpecModel):
    """Where trial metrics come from: the trial's log when logs is set, else Prometheus when
    set, else direct scrape of each trial."""

    prometheus: PrometheusSettings | None = None
    scrape: ScrapeSettings = Field(default_factory=ScrapeSettings)
    logs: LogSettings | None = Field(
        default=None,
        description="Read metrics from the trial's log (Katib-style name=value, or JSON lines).",
    )
    interval: str = Field(
        default="5s",
        pattern=DURATION_PATTERN,
        description=f"How often running trials are read; at least {MIN_INTERVAL}.",
    )

    @field_validator("interval")
    @classmethod
    def _interval_floor(cls, interval: str) -> str:
        # Not expressible in the CRD schema (a duration is a sum of parts), so the operator
        # refuses it on accept: 0s would read metrics (and reconcile) in a busy loop.
        if parse_duration(interval) < parse_duration(MIN_INTERVAL):
            raise ValueError(
                f"must be at least {MIN_INTERVAL}, got {interval!r} (trials are read this "
                "often; shorter would poll the metrics source in a busy loop)"
            )
        return interval


class SweepSpec(SpecModel):
    """spec of a HyperparameterSweep."""

    objective: Objective | None = None
    objectives: list[Objective] | None = Field(
        default=None,
        description="Two or more objectives: a multi-objective sweep with a Pareto front.",
    )
    parameters: list[Parameter] = Field(default_factory=list)
    algorithm: Algorithm = Field(default_factory=Algorithm)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    budget: Budget = Field(default_factory=Budget)
    trainer: TrainerSpec | None = None
    template: TemplateSpec | None = None
    workload: WorkloadSpec | None = Field(
        default=None,
        description=(
            "A whole Kubernetes object per trial (batch/v1 Job), e.g. for Kueue, which admits "
            "Jobs; its pod template is the trial's pod."
        ),
    )
    metrics: MetricsSpec = Field(default_factory=MetricsSpec)
    queue_name: str | None = Field(
        default=None,
        # A LocalQueue's name (a DNS subdomain) that is also a label value (at most 63).
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=DNS_LABEL_MAX,
        description=(
            "Kueue LocalQueue of every trial: trial pods (trainer or template) or Jobs "
            "(workload) get the kueue.x-k8s.io/queue-name label and wait until Kueue admits "
            "them; a trial Job is created suspended. Pods need Kueue's pod integration enabled "
            "for the sweep's namespace."
        ),
    )
    additional_metrics: list[MetricName] = Field(
        default_factory=list,
        max_length=MAX_ADDITIONAL_METRICS,
        description=(
            "Further metrics the trials report, recorded with each trial (status history, "
            "trials.csv, best.yaml) but not optimized: the final value from the trial's result, "
            "else its last reading."
        ),
    )
    suspend: bool = False

    @field_validator("parameters")
    @classmethod
    def _unique_names(cls, params: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for index, param in enumerate(params):
            if param.name in seen:
                raise ValueError(f"[{index}].name: duplicate parameter name {param.name!r}")
            seen.add(param.name)
        return params

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "SweepSpec":
        if self.objective is not None and self.objectives is not None:
            raise ValueError("objectives: set either objective or objectives, not both")
        if self.objectives is not None:
            if len(self.objectives) < 2:
                raise ValueError("objectives: needs two or more entries (use objective for one)")
            names = [o.metric for o in self.objectives]
            if len(set(names)) != len(names):
                raise ValueError("objectives: each metric may appear once")
            self._multi_objective_pruning()
            if self.algorithm.name == "cmaes":
                raise ValueError("algorithm.name: cmaes supports one objective only")
        self._gpu_hours_rules()
        named = [
            (f"objectives[{i}].metric" if self.objectives is not None else "objective.metric", o)
            for i, o in enumerate(o.metric for o in self.objective_list)
        ]
        named += [(f"additionalMetrics[{i}]", m) for i, m in enumerate(self.additional_metrics)]
        collisions = series_collisions(named)
        if collisions:
            raise ValueError(collisions[0])
        if self.metrics.logs is not None:
            if self.metrics.prometheus is not None:
                raise ValueError("metrics.logs: set either metrics.logs or metrics.prometheus")
            if self.trainer is not None:
                raise ValueError(
                    "metrics.logs: only with template or workload (the built-in trainer serves its "
                    "metrics on /metrics)"
                )
            for i, objective in enumerate(self.objective_list):
                if objective.query is not None:
                    field = f"objectives[{i}]" if self.objectives is not None else "objective"
                    raise ValueError(
                        f"{field}.query: a PromQL query needs metrics.prometheus, not metrics.logs"
                    )
        sources = [self.trainer, self.template, self.workload]
        if sum(source is not None for source in sources) != 1:
            raise ValueError("trainer: set exactly one of trainer, template or workload")
        if (self.template is not None or self.workload is not None) and not self.parameters:
            source = "template" if self.template is not None else "workload"
            raise ValueError(
                f"parameters: required with {source} (there is no default search space)"
            )
        if self.budget.parallelism > self.budget.max_trials:
            raise ValueError(
                f"budget.parallelism: must be <= budget.maxTrials "
                f"({self.budget.parallelism} > {self.budget.max_trials})"
            )
        if self.algorithm.name == "grid":
            for index, param in enumerate(self.parameters):
                if grid_size(param) is None:
                    raise ValueError(
                        f"parameters[{index}].step: grid search needs a step for the float "
                        f"range {param.name!r}"
                    )
            points = self.grid_points()
            if points is not None and points > MAX_GRID_POINTS:
                raise ValueError(
                    f"algorithm.name: grid search holds every grid point in memory, and this "
                    f"grid has {points} (at most {MAX_GRID_POINTS}); use larger steps, fewer "
                    "values, or a sampler such as random, qmc or tpe"
                )
        self._pruned_trials_rules()
        self._forecast_rules()
        if self.trainer is not None and self.trainer.eval_every > self.trainer.max_steps:
            raise ValueError(
                "trainer.evalEvery: must be <= trainer.maxSteps "
                f"({self.trainer.eval_every} > {self.trainer.max_steps})"
            )
        return self

    def _pruned_trials_rules(self) -> None:
        early = self.early_stopping
        if early.trials != "startup":
            return
        if early.name == "none":
            raise ValueError("earlyStopping.trials: startup needs a pruner, not 'none'")
        if self.algorithm.name not in STARTUP_ALGORITHMS:
            raise ValueError(
                "earlyStopping.trials: startup needs an algorithm with startup trials "
                f"({', '.join(STARTUP_ALGORITHMS)}), not {self.algorithm.name!r}"
            )

    def _forecast_rules(self) -> None:
        early = self.early_stopping
        if early.forecast and early.name not in ("auto", "asha", "hyperband"):
            raise ValueError(
                f"earlyStopping.forecast: only with auto, asha or hyperband, not {early.name!r}"
            )
        if early.max_steps is not None and not early.forecast and early.name != "auto":
            raise ValueError("earlyStopping.maxSteps: only with forecast: true (or name auto)")
        if early.forecast and self.last_step is None:
            raise ValueError(
                "earlyStopping.maxSteps: required with forecast and template or workload trials "
                "(the step forecasts aim at; the trainer's is trainer.maxSteps)"
            )

    def _multi_objective_pruning(self) -> None:
        """MO-ASHA ranks the objectives' intermediate values (engine/pruners.py)."""
        early = self.early_stopping
        if early.name in ("none", "auto"):  # auto resolves to none (auto_pruning.py)
            return
        if early.name != "asha":
            raise ValueError(
                f"earlyStopping.name: a multi-objective sweep prunes with asha (non-dominated "
                f"sorting at each rung) or none, not {early.name!r}"
            )
        if early.forecast:
            raise ValueError(
                "earlyStopping.forecast: not for a multi-objective sweep (MO-ASHA ranks the "
                "values at each rung)"
            )
        for index, objective in enumerate(self.objectives or []):
            if objective.metric == GPU_HOURS_OBJECTIVE:
                raise ValueError(
                    f"objectives[{index}].metric: {GPU_HOURS_OBJECTIVE} has no intermediate "
                    "values, so earlyStopping would rank trials on the other objectives alone "
                    "and stop the cheap ones the front needs; use earlyStopping none"
                )

    def _gpu_hours_rules(self) -> None:
        """gpu_hours is kubetune's own measure of a trial's cost (metric_names.GPU_HOURS_OBJECTIVE)."""
        if self.objective is not None and self.objective.metric == GPU_HOURS_OBJECTIVE:
            raise ValueError(
                f"objective.metric: {GPU_HOURS_OBJECTIVE} is a cost to trade against quality; "
                "name it in objectives next to a quality metric"
            )
        for index, objective in enumerate(self.objectives or []):
            if objective.metric != GPU_HOURS_OBJECTIVE:
                continue
            field = f"objectives[{index}]"
            if objective.direction != "minimize":
                raise ValueError(f"{field}.direction: {GPU_HOURS_OBJECTIVE} must be minimize")
            if objective.strategy != "final":
                raise ValueError(
                    f"{field}.strategy: {GPU_HOURS_OBJECTIVE} must be final (it is computed "
                    "once a trial ends)"
                )
            if objective.query is not None:
                raise ValueError(
                    f"{field}.query: {GPU_HOURS_OBJECTIVE} is computed by kubetune, not read "
                    "from metrics"
                )
        if GPU_HOURS_OBJECTIVE in self.additional_metrics:
            raise ValueError(
                f"additionalMetrics: {GPU_HOURS_OBJECTIVE} is recorded for every trial "
                "already (status history gs, trials.csv gpu_seconds)"
            )

    @property
    def objective_list(self) -> list[Objective]:
        """The objectives in order: one for a single-objective sweep."""
        if self.objectives is not None:
            return list(self.objectives)
        return [self.objective or Objective()]

    @property
    def multi_objective(self) -> bool:
        return self.objectives is not None

    @property
    def last_step(self) -> int | None:
        """The step trials end at (earlyStopping.maxSteps, else trainer.maxSteps), where
        forecasts aim; None when the spec does not say."""
        if self.early_stopping.max_steps is not None:
            return self.early_stopping.max_steps
        return self.trainer.max_steps if self.trainer is not None else None

    def grid_points(self) -> int | None:
        """Size of the full grid, or None when some parameter is continuous."""
        sizes = [grid_size(p) for p in self.parameters]
        if any(size is None for size in sizes):
            return None
        return math.prod(size for size in sizes if size is not None)
