"""A Katib `kubeflow.org/v1beta1` Experiment as a HyperparameterSweep manifest. Pure.

Field names follow Katib's API (pkg/apis/controller/experiments/v1beta1/experiment_types.go,
common/v1beta1/common_types.go) and its defaults (the Experiment defaulting webhook: objective
strategy min for minimize and max for maximize, parallelTrialCount 3, the StdOut collector).
What kubetune cannot express is listed in Conversion.unmapped, one line per Katib field path;
what makes the Experiment unreadable raises KatibError naming the field.
"""

import keyword
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubetune import KIND, conventions
from kubetune.spec.resource import API_VERSION_STRING
from kubetune.spec.status_match import path_problem, resolve
from kubetune.spec.workload_kinds import kind_of
from kubetune.spec.workload_rules import pod_spec_paths

KATIB_API_VERSION = "kubeflow.org/v1beta1"
KATIB_KIND = "Experiment"

# Katib algorithm name -> kubetune algorithm name.
ALGORITHMS = {
    "random": "random",
    "tpe": "tpe",
    "multivariate-tpe": "tpe",
    "grid": "grid",
    "bayesianoptimization": "gp",
    "cmaes": "cmaes",
    "sobol": "qmc",
}
# Katib algorithm settings with a kubetune equivalent: setting -> algorithm field.
_ALGORITHM_SETTINGS = {
    "random_state": "seed",
    "n_startup_trials": "startupTrials",
    "n_initial_points": "startupTrials",
}
# Katib's metric strategies -> Objective.strategy.
_STRATEGIES = {"min": "min", "max": "max", "latest": "final"}
# The Katib defaults the webhook fills in; written out because kubetune's differ.
KATIB_PARALLEL_TRIALS = 3
MEDIANSTOP_MIN_TRIALS = 3
MEDIANSTOP_START_STEP = 4
PROMETHEUS_PORT = 8080
PROMETHEUS_PATH = "/metrics"
# The conditions Katib sets for a batch/v1 Job; kubetune judges the pod's own ending instead.
_JOB_CONDITIONS = {
    "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
    "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
}
_WHOLE = re.compile(r"[-+]?\d+")
# ${trialParameters.NAME} in a Katib trial template.
TRIAL_PARAMETER = re.compile(r"\$\{trialParameters\.([^}]*)\}")
# A trialParameters reference to trial metadata: ${trialSpec.Name}, ${trialSpec.Labels[x]}.
_META_REFERENCE = re.compile(r"^\$\{trialSpec\.(.+)\}$")
# Where kubetune substitutes ${params.NAME} in a container (builders/substitute.py).
_SUBSTITUTED_KEYS = ("command", "args")


class KatibError(Exception):
    """An Experiment that cannot be read; .problems has one 'field: rule' line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass
class Conversion:
    """The sweep manifest, and each Katib field kubetune could not express."""

    sweep: dict[str, Any]
    unmapped: list[str] = field(default_factory=list)


@dataclass
class _Reader:
    """Reads Katib fields by path, collecting input problems and unmapped fields."""

    problems: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def mapping(self, value: Any, path: str, required: bool = False) -> dict[str, Any]:
        if value is None:
            if required:
                self.problems.append(f"{path}: required")
            return {}
        if not isinstance(value, dict):
            self.problems.append(f"{path}: must be a mapping")
            return {}
        return value

    def items(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problems.append(f"{path}: must be a list")
            return []
        return value

    def text(self, value: Any, path: str, required: bool = False) -> str | None:
        if value is None or value == "":
            if required:
                self.problems.append(f"{path}: required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problems.append(f"{path}: must be a string")
            return None
        return str(value)

    def number(self, value: Any, path: str, whole: bool) -> int | float | None:
        """A Katib number (often a string: feasibleSpace values are strings)."""
        text = self.text(value, path)
        if text is None:
            return None
        try:
            number = float(text)
        except ValueError:
            self.problems.append(f"{path}: must be a number, got {text!r}")
            return None
        if not math.isfinite(number):
            self.problems.append(f"{path}: must be a finite number, got {text!r}")
            return None
        if whole:
            if not number.is_integer():
                self.problems.append(f"{path}: must be a whole number, got {text!r}")
                return None
            return int(number)
        return number

    def count(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems.append(f"{path}: must be an integer")
            return None
        return value

    def cannot(self, path: str, why: str) -> None:
        self.unmapped.append(f"{path}: {why}")


def convert(experiment: Any) -> Conversion:
    """The HyperparameterSweep for one decoded Experiment document."""
    read = _Reader()
    if not isinstance(experiment, dict):
        raise KatibError(["the document must be a mapping (a Kubernetes object)"])
    problems = []
    if experiment.get("apiVersion") != KATIB_API_VERSION:
        problems.append(
            f"apiVersion: must be {KATIB_API_VERSION}, got {experiment.get('apiVersion')!r}"
        )
    if experiment.get("kind") != KATIB_KIND:
        problems.append(f"kind: must be {KATIB_KIND}, got {experiment.get('kind')!r}")
    if problems:
        raise KatibError(problems)
    metadata = read.mapping(experiment.get("metadata"), "metadata", required=True)
    name = read.text(metadata.get("name"), "metadata.name", required=True)
    namespace = read.text(metadata.get("namespace"), "metadata.namespace")
    spec = read.mapping(experiment.get("spec"), "spec", required=True)

    sweep_spec: dict[str, Any] = {}
    objective, additional = _objective(read, spec.get("objective"))
    sweep_spec["objective"] = objective
    if additional:
        sweep_spec["additionalMetrics"] = additional
    sweep_spec["algorithm"] = _algorithm(read, spec.get("algorithm"))
    early = _early_stopping(read, spec.get("earlyStopping"))
    if early is not None:
        sweep_spec["earlyStopping"] = early
    parameters, renamed = _parameters(read, spec)
    sweep_spec["parameters"] = parameters
    budget = _budget(read, spec)
    template, timeout = _trial_template(read, spec.get("trialTemplate"), renamed)
    if timeout is not None:
        budget["trialTimeout"] = timeout
    sweep_spec["budget"] = budget
    if template is not None:
        # A batch/v1 Job becomes a pod template; any other kind a workload.
        sweep_spec["workload" if "object" in template else "template"] = template
    metrics = _metrics(read, spec.get("metricsCollectorSpec"))
    if metrics:
        sweep_spec["metrics"] = metrics
    if spec.get("resumePolicy") not in (None, ""):
        read.cannot(
            "spec.resumePolicy",
            "kubetune keeps the study in the sweep's status and has no suggestion service "
            "to keep or resume",
        )
    if read.problems:
        raise KatibError(read.problems)
    sweep_metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        sweep_metadata["namespace"] = namespace
    manifest = {
        "apiVersion": API_VERSION_STRING,
        "kind": KIND,
        "metadata": sweep_metadata,
        "spec": sweep_spec,
    }
    return Conversion(manifest, read.unmapped)


def _objective(read: _Reader, value: Any) -> tuple[dict[str, Any], list[str]]:
    path = "spec.objective"
    objective = read.mapping(value, path, required=True)
    direction = read.text(objective.get("type"), f"{path}.type", required=True)
    if direction is not None and direction not in ("minimize", "maximize"):
        read.problems.append(f"{path}.type: must be minimize or maximize, got {direction!r}")
    metric = read.text(objective.get("objectiveMetricName"), f"{path}.objectiveMetricName", True)
    additional = [
        text
        for i, item in enumerate(read.items(objective.get("additionalMetricNames"), path))
        if (text := read.text(item, f"{path}.additionalMetricNames[{i}]", True)) is not None
    ]
    # Katib's webhook default: the objective's best value in the trial's direction.
    default = "min" if direction == "minimize" else "max"
    strategies: dict[str, tuple[str, str]] = {}
    for i, item in enumerate(read.items(objective.get("metricStrategies"), path)):
        where = f"{path}.metricStrategies[{i}]"
        entry = read.mapping(item, where)
        metric_name = read.text(entry.get("name"), f"{where}.name", required=True)
        strategy = read.text(entry.get("value"), f"{where}.value", required=True)
        if strategy is not None and strategy not in _STRATEGIES:
            read.problems.append(f"{where}.value: must be min, max or latest, got {strategy!r}")
        elif metric_name is not None and strategy is not None:
            strategies[metric_name] = (strategy, where)
    result: dict[str, Any] = {"metric": metric, "direction": direction}
    if metric is not None:
        chosen, _ = strategies.get(metric, (default, path))
        result["strategy"] = _STRATEGIES.get(chosen, "final")
    goal = objective.get("goal")
    if goal is not None:
        if isinstance(goal, bool) or not isinstance(goal, (int, float)):
            read.problems.append(f"{path}.goal: must be a number")
        else:
            result["target"] = goal
    for name in additional:
        strategy, where = strategies.get(name, (default, f"{path}.additionalMetricNames"))
        if strategy != "latest":
            read.cannot(
                where,
                f"{name}: Katib records its {strategy} value; kubetune records an additional "
                "metric's final value",
            )
    for name, (_, where) in strategies.items():
        if name != metric and name not in additional:
            read.cannot(where, f"{name} is neither the objective nor an additional metric")
    return result, additional


def _settings(read: _Reader, value: Any, path: str) -> Iterator[tuple[str, str, str]]:
    """(path, name, value) of each algorithmSettings entry."""
    for i, item in enumerate(read.items(value, path)):
        where = f"{path}[{i}]"
        entry = read.mapping(item, where)
        name = read.text(entry.get("name"), f"{where}.name", required=True)
        text = read.text(entry.get("value"), f"{where}.value") or ""
        if name is not None:
            yield where, name, text


def _algorithm(read: _Reader, value: Any) -> dict[str, Any]:
    path = "spec.algorithm"
    algorithm = read.mapping(value, path, required=True)
    name = read.text(algorithm.get("algorithmName"), f"{path}.algorithmName", required=True)
    result: dict[str, Any] = {"name": "tpe"}
    if name is not None and name in ALGORITHMS:
        result["name"] = ALGORITHMS[name]
        if name == "multivariate-tpe":
            read.cannot(f"{path}.algorithmName", "multivariate-tpe: sampled by kubetune's tpe")
    elif name == "hyperband":
        read.cannot(
            f"{path}.algorithmName",
            "hyperband: kubetune runs Hyperband as a pruner (earlyStopping: {name: hyperband}) "
            "beside a sampler; converted with algorithm tpe",
        )
    elif name is not None:
        read.cannot(
            f"{path}.algorithmName",
            f"{name}: no kubetune equivalent (PBT and the NAS algorithms are not supported); "
            "converted with algorithm tpe",
        )
    for where, setting, text in _settings(
        read, algorithm.get("algorithmSettings"), f"{path}.algorithmSettings"
    ):
        target = _ALGORITHM_SETTINGS.get(setting)
        if target is None:
            read.cannot(where, f"{setting}: no kubetune equivalent")
            continue
        number = read.number(text, f"{where}.value", whole=True)
        if number is not None:
            if number < 0:
                read.problems.append(f"{where}.value: {setting} must be >= 0, got {text!r}")
            else:
                result[target] = number
    return result


def _early_stopping(read: _Reader, value: Any) -> dict[str, Any] | None:
    path = "spec.earlyStopping"
    if value is None:
        return None
    early = read.mapping(value, path)
    name = read.text(early.get("algorithmName"), f"{path}.algorithmName", required=True)
    if name is None:
        return None
    if name != "medianstop":
        read.cannot(f"{path}.algorithmName", f"{name}: only medianstop has a kubetune equivalent")
        return None
    result: dict[str, Any] = {
        "name": "median",
        "startupTrials": MEDIANSTOP_MIN_TRIALS,
        "minSteps": MEDIANSTOP_START_STEP,
    }
    targets = {"min_trials_required": ("startupTrials", 0), "start_step": ("minSteps", 1)}
    for where, setting, text in _settings(
        read, early.get("algorithmSettings"), f"{path}.algorithmSettings"
    ):
        if setting not in targets:
            read.cannot(where, f"{setting}: no kubetune equivalent")
            continue
        key, least = targets[setting]
        number = read.number(text, f"{where}.value", whole=True)
        if number is None:
            continue
        if number < least:
            read.problems.append(f"{where}.value: {setting} must be >= {least}, got {text!r}")
            continue
        result[key] = number
        if setting == "start_step":
            read.cannot(
                where,
                "start_step counts reported results, kubetune's minSteps counts training "
                f"steps; converted as minSteps {number}, check it against the trial's steps",
            )
    return result


def parameter_name(name: str) -> str:
    """A Katib parameter name as a kubetune one: an identifier (num-layers -> num_layers)."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)[:63]
    if not cleaned or cleaned[0].isdigit():
        cleaned = f"_{cleaned}"[:63]
    if keyword.iskeyword(cleaned):
        cleaned = f"{cleaned}_"
    return cleaned


def _parameters(read: _Reader, spec: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The parameters, and each Katib name -> its kubetune name."""
    if spec.get("nasConfig") is not None:
        read.cannot("spec.nasConfig", "neural architecture search has no kubetune equivalent")
    items = read.items(spec.get("parameters"), "spec.parameters")
    if not items:
        read.problems.append("spec.parameters: required (at least one parameter)")
    result: list[dict[str, Any]] = []
    renamed: dict[str, str] = {}
    for index, item in enumerate(items):
        path = f"spec.parameters[{index}]"
        param = read.mapping(item, path, required=True)
        katib_name = read.text(param.get("name"), f"{path}.name", required=True)
        if katib_name is None:
            continue
        name = parameter_name(katib_name)
        if name in renamed.values():
            read.problems.append(
                f"{path}.name: {katib_name!r} becomes {name!r}, which another parameter has"
            )
            continue
        if name != katib_name:
            read.cannot(
                f"{path}.name",
                f"{katib_name!r} renamed {name!r} (kubetune names are identifiers)",
            )
        renamed[katib_name] = name
        converted = _parameter(read, param, path, name)
        if converted is not None:
            result.append(converted)
    return result, renamed


def _parameter(read: _Reader, param: dict[str, Any], path: str, name: str) -> dict[str, Any] | None:
    kind = read.text(param.get("parameterType"), f"{path}.parameterType", required=True)
    space_path = f"{path}.feasibleSpace"
    space = read.mapping(param.get("feasibleSpace"), space_path, required=True)
    distribution = read.text(space.get("distribution"), f"{space_path}.distribution")
    if kind in ("categorical", "discrete"):
        values = read.items(space.get("list"), f"{space_path}.list")
        if not values:
            read.problems.append(f"{space_path}.list: required for parameterType {kind}")
            return None
        if distribution not in (None, "uniform"):
            read.cannot(f"{space_path}.distribution", f"{distribution}: choices are uniform")
        if kind == "categorical":
            texts = [read.text(v, f"{space_path}.list[{i}]", True) for i, v in enumerate(values)]
            return {"name": name, "type": "categorical", "values": texts}
        # Katib lists every value as a string: "8" stays an int choice, "0.5" a float one.
        numbers = [
            int(str(v))
            if _WHOLE.fullmatch(str(v))
            else read.number(v, f"{space_path}.list[{i}]", False)
            for i, v in enumerate(values)
        ]
        return {"name": name, "type": "categorical", "values": numbers}
    if kind not in ("double", "int"):
        if kind is not None:
            read.problems.append(
                f"{path}.parameterType: must be double, int, categorical or discrete, got {kind!r}"
            )
        return None
    whole = kind == "int"
    low = read.number(space.get("min"), f"{space_path}.min", whole)
    high = read.number(space.get("max"), f"{space_path}.max", whole)
    for bound in ("min", "max"):
        if space.get(bound) in (None, ""):
            read.problems.append(f"{space_path}.{bound}: required (kubetune needs both bounds)")
    result: dict[str, Any] = {
        "name": name,
        "type": "int" if whole else "float",
        "min": low,
        "max": high,
    }
    step = read.number(space.get("step"), f"{space_path}.step", whole)
    log = distribution in ("logUniform", "logNormal")
    if distribution in ("normal", "logNormal"):
        read.cannot(
            f"{space_path}.distribution",
            f"{distribution}: kubetune samples ranges uniformly"
            + (" in log space" if log else "")
            + "; converted as such",
        )
    elif distribution not in (None, "uniform", "logUniform"):
        read.problems.append(
            f"{space_path}.distribution: must be uniform, logUniform, normal or logNormal, "
            f"got {distribution!r}"
        )
    if log:
        result["log"] = True
        if step is not None and step != 1:
            read.cannot(f"{space_path}.step", "a log-scale range takes no step; dropped")
            step = None
    if step is not None and step != 0 and not (whole and step == 1):
        result["step"] = step
    return result


def _budget(read: _Reader, spec: dict[str, Any]) -> dict[str, Any]:
    budget: dict[str, Any] = {}
    most = read.count(spec.get("maxTrialCount"), "spec.maxTrialCount")
    parallel = read.count(spec.get("parallelTrialCount"), "spec.parallelTrialCount")
    failed = read.count(spec.get("maxFailedTrialCount"), "spec.maxFailedTrialCount")
    if most is not None:
        budget["maxTrials"] = most
    if parallel is None:
        # Katib's default, kept within kubetune's rule parallelism <= maxTrials.
        parallel = KATIB_PARALLEL_TRIALS if most is None else min(KATIB_PARALLEL_TRIALS, most)
    budget["parallelism"] = parallel
    if failed is not None:
        budget["maxFailedTrials"] = failed
    return budget


def _trial_template(
    read: _Reader, value: Any, renamed: dict[str, str]
) -> tuple[dict[str, Any] | None, str | None]:
    """spec.template from a batch/v1 Job trialSpec, and the trial timeout the Job sets."""
    path = "spec.trialTemplate"
    template = read.mapping(value, path, required=True)
    if not template:
        return None, None
    if template.get("retain") not in (None, False):
        read.cannot(f"{path}.retain", "no kubetune equivalent")
    container = read.text(
        template.get("primaryContainerName"), f"{path}.primaryContainerName", required=True
    )
    references = _trial_references(read, template.get("trialParameters"), renamed)
    if template.get("configMap") is not None:
        read.cannot(
            f"{path}.configMap",
            "a template kept in a ConfigMap is not read; put its Job in trialSpec",
        )
        return None, None
    trial = read.mapping(template.get("trialSpec"), f"{path}.trialSpec", required=True)
    if not trial:
        return None, None
    api_version, kind = trial.get("apiVersion"), trial.get("kind")
    if (api_version, kind) != ("batch/v1", "Job"):
        return _workload(read, template, trial, container, references), None
    for key in ("primaryPodLabels",):
        if template.get(key) not in (None, {}):
            read.cannot(f"{path}.{key}", "no kubetune equivalent: a Job has one pod")
    for key, job_default in _JOB_CONDITIONS.items():
        if template.get(key) not in (None, "", job_default):
            read.cannot(f"{path}.{key}", "kubetune judges a trial by how its pod ended")
    job_path = f"{path}.trialSpec"
    job_meta = read.mapping(trial.get("metadata"), f"{job_path}.metadata")
    for key in sorted(job_meta):
        read.cannot(f"{job_path}.metadata.{key}", "the Job's own metadata has no equivalent")
    job_spec = read.mapping(trial.get("spec"), f"{job_path}.spec", required=True)
    timeout = None
    for key in sorted(job_spec):
        if key == "template":
            continue
        if key == "activeDeadlineSeconds":
            seconds = read.count(job_spec[key], f"{job_path}.spec.{key}")
            if seconds is not None and seconds > 0:
                timeout = f"{seconds}s"
            continue
        read.cannot(f"{job_path}.spec.{key}", "a Job field with no kubetune equivalent")
    pod = read.mapping(job_spec.get("template"), f"{job_path}.spec.template", required=True)
    pod_spec = read.mapping(pod.get("spec"), f"{job_path}.spec.template.spec", required=True)
    if not pod_spec:
        return None, timeout
    result: dict[str, Any] = {}
    if pod.get("metadata"):
        result["metadata"] = _rewrite(
            read, pod["metadata"], f"{job_path}.spec.template.metadata", references, False
        )
    result["spec"] = _rewrite_pod_spec(read, pod_spec, f"{job_path}.spec.template.spec", references)
    if container is not None:
        result["container"] = container
    return result, timeout


def _workload(
    read: _Reader,
    template: dict[str, Any],
    trial: dict[str, Any],
    container: str | None,
    references: dict[str, str | None],
) -> dict[str, Any]:
    """spec.workload from a trialSpec of any kind other than batch/v1 Job: the object with
    ${trialParameters.X} as ${params.Y} (kubetune substitutes in every string of it), and,
    for a kind kubetune does not know, its pod templates, primary pod labels and conditions."""
    path = "spec.trialTemplate"
    obj = _rewrite(read, trial, f"{path}.trialSpec", references, True)
    meta = dict(obj.get("metadata") or {})
    for key in ("name", "namespace", "generateName"):
        if meta.pop(key, None) is not None:
            read.cannot(f"{path}.trialSpec.metadata.{key}", "kubetune names each trial's object")
    if meta:
        obj["metadata"] = meta
    else:
        obj.pop("metadata", None)
    workload: dict[str, Any] = {"object": obj}
    if container is not None:
        workload["primaryPod"] = {"container": container}
    labels = read.mapping(template.get("primaryPodLabels"), f"{path}.primaryPodLabels")
    known = kind_of(obj)
    if known is not None:
        # kubetune reads a known kind's own conditions and picks its primary pod itself.
        for key, condition in (
            ("successCondition", known.success),
            ("failureCondition", known.failure),
        ):
            if template.get(key) not in (None, "", katib_condition(condition)):
                read.cannot(f"{path}.{key}", f"kubetune reads a {known.kind}'s own {condition}")
        primary = known.primary_labels(obj)
        if labels and not (labels.items() <= primary.items() or labels == _PYTORCH_MASTER):
            read.cannot(
                f"{path}.primaryPodLabels",
                f"kubetune picks a {known.kind}'s primary pod itself "
                f"({', '.join(f'{k}={v}' for k, v in sorted(primary.items()))})",
            )
        return workload
    templates = _pod_template_paths(obj, container)
    if templates:
        workload["podTemplates"] = templates
    else:
        read.cannot(f"{path}.trialSpec", "no pod template (template.spec.containers) found in it")
    if labels:
        workload["primaryPod"] = {**workload.get("primaryPod", {}), "labels": dict(labels)}
    for key in ("successCondition", "failureCondition"):
        text = read.text(template.get(key), f"{path}.{key}")
        if text is None:
            continue
        match = status_match(text)
        if match is None:
            read.cannot(
                f"{path}.{key}",
                f"{text!r}: kubetune matches a status condition or a status field's value, "
                "not other GJSON expressions; write it as {type: ..., status: ...} or "
                "{field: status..., equals: ...}",
            )
        else:
            workload[key] = match
    return workload


# Katib's GJSON forms for a status condition and for a status field (Katib's own defaults for
# Job, TFJob and PyTorchJob, and its examples for Argo and Tekton).
_GJSON_CONDITION = re.compile(
    r'^status\.conditions\.#\(type=="([A-Za-z0-9_.-]{1,63})"\)#\|#\(status=="(True|False|Unknown)"\)#$'
)
_GJSON_FIELD = re.compile(r'^status\.\[@this\]\.#\(([A-Za-z0-9_-]{1,63})=="([^"\\]{0,253})"\)#$')
# How Katib's PyTorchJob examples name the master; kubetune's own selector is the replica labels.
_PYTORCH_MASTER = {"training.kubeflow.org/job-role": "master"}


def katib_condition(kind: str, status: str = "True") -> str:
    """Katib's GJSON for: a status condition of this type has this status."""
    return f'status.conditions.#(type=="{kind}")#|#(status=="{status}")#'


def status_match(text: str) -> dict[str, str] | None:
    """A Katib success/failure condition as kubetune's StatusMatch, when it has that form."""
    found = _GJSON_CONDITION.match(text.strip())
    if found is not None:
        match = {"type": found.group(1)}
        if found.group(2) != "True":
            match["status"] = found.group(2)
        return match
    found = _GJSON_FIELD.match(text.strip())
    if found is not None:
        return {"field": f"status.{found.group(1)}", "equals": found.group(2)}
    return None


def _pod_template_paths(obj: dict[str, Any], container: str | None) -> list[str]:
    """Field paths of the pod templates (the mapping around each pod spec) in the object,
    the ones holding the primary container first."""
    found = []
    for path in pod_spec_paths(obj):
        template = path.removesuffix(".spec")
        if template != path and path_problem(template) is None:
            found.append((template, resolve(obj, path)))

    def holds_primary(pod_spec: Any) -> bool:
        containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
        items = containers if isinstance(containers, list) else []
        return container in [c.get("name") for c in items if isinstance(c, dict)]

    found.sort(key=lambda item: not holds_primary(item[1]))
    return [where for where, _pod_spec in found]


def _trial_references(read: _Reader, value: Any, renamed: dict[str, str]) -> dict[str, str | None]:
    """trialParameters NAME -> the kubetune parameter it stands for (None: no equivalent)."""
    path = "spec.trialTemplate.trialParameters"
    references: dict[str, str | None] = {}
    for i, item in enumerate(read.items(value, path)):
        where = f"{path}[{i}]"
        entry = read.mapping(item, where)
        name = read.text(entry.get("name"), f"{where}.name", required=True)
        reference = read.text(entry.get("reference"), f"{where}.reference", required=True)
        if name is None or reference is None:
            continue
        if reference in renamed:
            references[name] = renamed[reference]
        elif _META_REFERENCE.match(reference):
            references[name] = None
            read.cannot(
                f"{where}.reference",
                f"{reference} (trial metadata) has no placeholder; the trial's name is in "
                f"env {conventions.ENV_TRIAL}, its namespace in {conventions.ENV_NAMESPACE}",
            )
        else:
            references[name] = None  # its placeholders are this one problem, not more
            read.problems.append(f"{where}.reference: {reference!r} names no spec.parameters entry")
    return references


def _rewrite_pod_spec(
    read: _Reader, pod_spec: dict[str, Any], path: str, references: dict[str, str | None]
) -> dict[str, Any]:
    """The pod spec with ${trialParameters.X} as ${params.Y} where kubetune substitutes."""
    result: dict[str, Any] = {}
    for key, value in pod_spec.items():
        if key in ("containers", "initContainers") and isinstance(value, list):
            result[key] = [
                _rewrite_container(read, item, f"{path}.{key}[{i}]", references)
                if isinstance(item, dict)
                else item
                for i, item in enumerate(value)
            ]
        else:
            result[key] = _rewrite(read, value, f"{path}.{key}", references, False)
    return result


def _rewrite_container(
    read: _Reader, container: dict[str, Any], path: str, references: dict[str, str | None]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in container.items():
        where = f"{path}.{key}"
        if key in _SUBSTITUTED_KEYS:
            result[key] = _rewrite(read, value, where, references, True)
        elif key == "env" and isinstance(value, list):
            result[key] = [
                {
                    k: _rewrite(read, v, f"{where}[{i}].{k}", references, k == "value")
                    for k, v in var.items()
                }
                if isinstance(var, dict)
                else var
                for i, var in enumerate(value)
            ]
        else:
            result[key] = _rewrite(read, value, where, references, False)
    return result


def _rewrite(
    read: _Reader, value: Any, path: str, references: dict[str, str | None], substituted: bool
) -> Any:
    """value with its placeholders rewritten where kubetune substitutes, reported elsewhere."""
    if isinstance(value, dict):
        return {
            k: _rewrite(read, v, f"{path}.{k}", references, substituted) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _rewrite(read, v, f"{path}[{i}]", references, substituted) for i, v in enumerate(value)
        ]
    if not isinstance(value, str) or not TRIAL_PARAMETER.search(value):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in references:
            read.problems.append(
                f"{path}: ${{trialParameters.{name}}} names no trialParameters entry"
            )
            return match.group(0)
        target = references[name]
        if target is None:
            return match.group(0)  # reported with its trialParameters entry
        if not substituted:
            read.cannot(
                path,
                f"${{trialParameters.{name}}}: kubetune substitutes parameters only in a "
                "container's command, args and env values; left as written",
            )
            return match.group(0)
        return f"${{params.{target}}}"

    return TRIAL_PARAMETER.sub(replace, value)


def _metrics(read: _Reader, value: Any) -> dict[str, Any]:
    path = "spec.metricsCollectorSpec"
    spec = read.mapping(value, path)
    collector = read.mapping(spec.get("collector"), f"{path}.collector")
    kind = read.text(collector.get("kind"), f"{path}.collector.kind") or "StdOut"
    source = read.mapping(spec.get("source"), f"{path}.source")
    where = f"{path}.collector.kind" if collector else path
    if kind == "PrometheusMetric":
        http = read.mapping(source.get("httpGet"), f"{path}.source.httpGet")
        port = http.get("port", PROMETHEUS_PORT)
        scrape: dict[str, Any] = {"path": http.get("path") or PROMETHEUS_PATH}
        if isinstance(port, int) and not isinstance(port, bool):
            scrape["port"] = port
        elif isinstance(port, str) and port.isdigit():
            scrape["port"] = int(port)
        else:
            scrape["port"] = PROMETHEUS_PORT
            read.cannot(
                f"{path}.source.httpGet.port",
                f"{port!r}: kubetune scrapes a port number; converted as {PROMETHEUS_PORT}",
            )
        for key in sorted(http):
            if key not in ("port", "path"):
                read.cannot(f"{path}.source.httpGet.{key}", "no kubetune equivalent")
        return {"scrape": scrape}
    if kind == "StdOut":
        # The trial's log, name=value lines with Katib's own default filter (or the one given).
        logs: dict[str, Any] = {}
        formats = read.items(
            read.mapping(source.get("filter"), f"{path}.source.filter").get("metricsFormat"),
            f"{path}.source.filter.metricsFormat",
        )
        if len(formats) == 1 and isinstance(formats[0], str) and formats[0]:
            logs["filter"] = formats[0]
        elif formats:
            read.cannot(
                f"{path}.source.filter.metricsFormat",
                "kubetune takes one filter expression; Katib's default is used",
            )
        return {"logs": logs}
    reasons = {
        "File": "File: a metrics file in the trial's pod is not read; print the metrics to "
        "stdout (Katib's StdOut collector) instead",
        "TensorFlowEvent": "TensorFlowEvent: TF event files are not read",
        "Custom": "Custom: a custom collector container has no equivalent",
        "None": "None: the trial reports to Katib's database itself; kubetune reads the "
        "trial's metrics endpoint instead",
        "Push": "Push: the trial pushes to Katib's database; kubetune reads the trial's "
        "metrics endpoint instead",
    }
    read.cannot(where, reasons.get(kind, f"{kind}: unknown collector kind"))
    if source.get("filter") is not None:
        read.cannot(f"{path}.source.filter", "metricsFormat filters have no equivalent")
    return {}
