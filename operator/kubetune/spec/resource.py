"""The HyperparameterSweep resource: metadata, spec and status together."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kubetune import API_GROUP, API_VERSION
from kubetune.spec.defaults import default_parameters
from kubetune.spec.status import SweepStatus
from kubetune.spec.sweep import Objective, SweepSpec

API_VERSION_STRING = f"{API_GROUP}/{API_VERSION}"
# Trial pods are named <sweep>-tNNNN and carry that name as a label value (<= 63 chars).
MAX_SWEEP_NAME = 57
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=_DNS_LABEL, max_length=MAX_SWEEP_NAME)
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
        update["objective"] = Objective()
    if not spec.parameters and spec.trainer is not None:
        update["parameters"] = default_parameters(spec.trainer)
    if not update:
        return spec
    filled = spec.model_copy(update=update)
    # Re-validate so the cross-field rules see the filled-in values too.
    return SweepSpec.model_validate(filled.model_dump(by_alias=True, exclude_none=True))
