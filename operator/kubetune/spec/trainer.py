"""What each trial runs: the built-in trainer, or any pod template."""

from typing import Any, Literal

from pydantic import Field, field_validator

from kubetune import conventions
from kubetune.spec.parameters import SpecModel

TrainerArgValue = bool | int | float | str | list[str]
Quantity = int | str


class DatasetSpec(SpecModel):
    """Training data: a local JSONL/text file, a hub dataset id, or synthetic:<task>."""

    path: str = Field(
        default="synthetic:arithmetic",
        min_length=1,
        description="synthetic:<task>, a local .jsonl/.txt path, or a Hugging Face dataset id.",
    )
    train_split: str | None = Field(default=None, description='e.g. "train[:2000]"')
    eval_split: str | None = Field(default=None, description='e.g. "train[2000:2200]"')
    text_field: str | None = Field(default=None, description="Column with plain text.")
    prompt_field: str | None = Field(default=None, description="Column with the prompt.")
    response_field: str | None = Field(default=None, description="Column with the answer.")


class SecretKeySelector(SpecModel):
    name: str = Field(min_length=1)
    key: str = Field(min_length=1)
    optional: bool | None = None


class ObjectFieldSelector(SpecModel):
    field_path: str = Field(min_length=1)
    api_version: str | None = None


class EnvVarSource(SpecModel):
    secret_key_ref: SecretKeySelector | None = None
    config_map_key_ref: SecretKeySelector | None = None
    field_ref: ObjectFieldSelector | None = None


class EnvVar(SpecModel):
    """A container environment variable; secrets only through secretKeyRef."""

    name: str = Field(pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = None
    value_from: EnvVarSource | None = None


class ResourceRequirements(SpecModel):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None


class TrainerSpec(SpecModel):
    """Settings of the built-in LLM fine-tuning trainer."""

    image: str | None = Field(
        default=None, description="Trainer image; default from the operator's configuration."
    )
    model: str = Field(
        default=conventions.TINY_MODEL,
        min_length=1,
        description="Hub id, a path on a mounted volume, or tiny.",
    )
    method: Literal["lora", "qlora", "full"] = "lora"
    mode: Literal["train", "generate"] = Field(
        default="train",
        description="generate: tune decoding settings of a trained model, no training.",
    )
    adapter: str | None = Field(
        default=None, description="generate mode: path of a trained adapter or model to evaluate."
    )
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    max_steps: int = Field(default=200, ge=1)
    eval_every: int = Field(default=50, ge=1)
    args: dict[str, TrainerArgValue] = Field(
        default_factory=dict,
        description="Fixed trainer arguments (snake_case); parameters of the same name override them.",
    )
    output_dir: str | None = Field(
        default=None, description="Where adapters and results go, e.g. a mounted volume."
    )
    resources: ResourceRequirements | None = None
    env: list[EnvVar] = Field(default_factory=list)

    @field_validator("env")
    @classmethod
    def _no_reserved_env(cls, env: list[EnvVar]) -> list[EnvVar]:
        for index, var in enumerate(env):
            if conventions.is_kubetune_env(var.name):
                raise ValueError(f"[{index}].name: KUBETUNE_* variables are set by kubetune")
            if var.value is not None and var.value_from is not None:
                raise ValueError(f"[{index}]: set value or valueFrom, not both")
        return env

    def secret_env_names(self) -> list[str]:
        """The env vars whose values come from a secret: the trainer never reports them."""
        return [
            var.name
            for var in self.env
            if var.value_from is not None and var.value_from.secret_key_ref is not None
        ]


class TemplateSpec(SpecModel):
    """Any pod template: parameters reach it as ${params.NAME} and KUBETUNE_PARAMS."""

    metadata: dict[str, Any] | None = None
    spec: dict[str, Any] = Field(description="A PodSpec.")
    container: str | None = Field(
        default=None, description="Container that runs the trial; default the first one."
    )
