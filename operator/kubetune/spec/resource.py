"""The HyperparameterSweep resource: metadata, spec and status together."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kubetune import API_GROUP, API_VERSION, conventions
from kubetune.metric_names import trainer_objectives
from kubetune.spec import auto_pruning
from kubetune.spec.defaults import default_parameters
from kubetune.spec.parameters import MAX_TRIALS
from kubetune.spec.status import SweepStatus
from kubetune.spec.sweep import Objective, SweepSpec

API_VERSION_STRING = f"{API_GROUP}/{API_VERSION}"
# Trial pods are named <sweep>-tNNNN and carry that name as a label value: both <= 63 chars.
MAX_LABEL_VALUE = 63
# The longest sweep name any budget allows (the longest trial number is MAX_TRIALS - 1).
MAX_SWEEP_NAME = MAX_LABEL_VALUE - len(conventions.trial_name("", MAX_TRIALS - 1))
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    # The length rule depends on spec.budget: HyperparameterSweep._trial_names_fit.
    name: str = Field(pattern=_DNS_LABEL)
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    generation: int | None = None
    uid: str | None = None


class HyperparameterSweep(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["kubetune.dev/v1alpha1"] = Field(
        default="kubetune.dev/v1alpha1", alias="apiVersion"
    )
    kind: Literal["HyperparameterSweep"] = "HyperparameterSweep"
    metadata: ObjectMeta
    spec: SweepSpec
    status: SweepStatus | None = None

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata_is_mapping(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("must be a mapping with at least a name")
        return value

    @model_validator(mode="after")
    def _trial_names_fit(self) -> "HyperparameterSweep":
        longest = conventions.trial_name(self.metadata.name, self.spec.budget.max_trials - 1)
        if len(longest) > MAX_LABEL_VALUE:
            room = MAX_LABEL_VALUE - (len(longest) - len(self.metadata.name))
            raise ValueError(
                f"metadata.name: too long ({len(self.metadata.name)} characters): the pod name "
                f"<sweep>-tNNNN must fit in {MAX_LABEL_VALUE} characters, and so must the "
                f"{conventions.LABEL_TRIAL} label value that carries it, but {longest!r} has "
                f"{len(longest)}; use at most {room} characters"
            )
        return self

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"


def effective_spec(spec: SweepSpec) -> SweepSpec:
    """The spec with every default made explicit: what the engine actually runs."""
    update: dict[str, Any] = {}
    if spec.objective is None and spec.objectives is None:
        update["objective"] = _default_objective(spec)
    if not spec.parameters and spec.trainer is not None:
        update["parameters"] = default_parameters(spec.trainer)
    if spec.early_stopping.name == "auto":
        update["early_stopping"] = auto_pruning.resolve(spec)
    if not update:
        return spec
    filled = spec.model_copy(update=update)
    # Re-validate so the cross-field rules see the filled-in values too.
    return SweepSpec.model_validate(filled.model_dump(by_alias=True, exclude_none=True))


def _default_objective(spec: SweepSpec) -> Objective:
    # Generate mode only scores answers: eval_loss, the usual default, is never reported.
    if spec.trainer is not None and spec.trainer.mode == "generate":
        return Objective(metric=trainer_objectives("generate")[0], direction="maximize")
    return Objective()
