"""The HyperparameterSweep spec and status models: the one source of truth for the CRD."""

from kubetune.spec.defaults import default_parameters
from kubetune.spec.durations import parse_duration
from kubetune.spec.errors import SpecError
from kubetune.spec.loader import load_documents, load_sweep, load_sweeps, parse_sweep
from kubetune.spec.parameters import (
    CategoricalParameter,
    CategoricalValue,
    FloatParameter,
    IntParameter,
    Parameter,
    grid_size,
)
from kubetune.spec.resource import (
    API_VERSION_STRING,
    MAX_SWEEP_NAME,
    HyperparameterSweep,
    ObjectMeta,
    effective_spec,
)
from kubetune.spec.status import (
    BestTrial,
    Condition,
    Phase,
    SweepStatus,
    TrialCounts,
    TrialRecord,
    TrialState,
)
from kubetune.spec.sweep import (
    Algorithm,
    Budget,
    EarlyStopping,
    LogSettings,
    MetricsSpec,
    Objective,
    PrometheusSettings,
    ScrapeSettings,
    SweepSpec,
)
from kubetune.spec.trainer import (
    DatasetSpec,
    EnvVar,
    PrimaryPod,
    TemplateSpec,
    TrainerSpec,
    WorkloadSpec,
)

__all__ = [
    "API_VERSION_STRING",
    "MAX_SWEEP_NAME",
    "Algorithm",
    "BestTrial",
    "Budget",
    "CategoricalParameter",
    "CategoricalValue",
    "Condition",
    "DatasetSpec",
    "EarlyStopping",
    "EnvVar",
    "FloatParameter",
    "HyperparameterSweep",
    "IntParameter",
    "LogSettings",
    "MetricsSpec",
    "ObjectMeta",
    "Objective",
    "Parameter",
    "Phase",
    "PrimaryPod",
    "PrometheusSettings",
    "ScrapeSettings",
    "SpecError",
    "SweepSpec",
    "SweepStatus",
    "TemplateSpec",
    "TrainerSpec",
    "TrialCounts",
    "TrialRecord",
    "TrialState",
    "WorkloadSpec",
    "default_parameters",
    "effective_spec",
    "grid_size",
    "load_documents",
    "load_sweep",
    "load_sweeps",
    "parse_duration",
    "parse_sweep",
]
