"""The recommended search space used when a built-in-trainer sweep names no parameters.

From published LoRA guidance (Hu et al. 2021; the QLoRA paper; Hugging Face PEFT docs):
learning rates around 1e-4 to 3e-4 on a log scale, ranks 8-64 with alpha tied to rank
(the trainer's lora_alpha_ratio, default 2), light dropout, and a short warmup. Full
fine-tuning wants about ten times smaller learning rates and some weight decay.
"""

from kubetune.spec.parameters import CategoricalParameter, FloatParameter, IntParameter
from kubetune.spec.trainer import TrainerSpec

AnyParameter = FloatParameter | IntParameter | CategoricalParameter

_LORA: tuple[AnyParameter, ...] = (
    FloatParameter(name="learning_rate", type="float", min=5e-5, max=5e-4, log=True),
    CategoricalParameter(name="lora_r", type="categorical", values=[8, 16, 32, 64]),
    CategoricalParameter(name="lora_dropout", type="categorical", values=[0.0, 0.05, 0.1]),
    FloatParameter(name="warmup_ratio", type="float", min=0.0, max=0.1),
)

_FULL: tuple[AnyParameter, ...] = (
    FloatParameter(name="learning_rate", type="float", min=5e-6, max=1e-4, log=True),
    CategoricalParameter(name="weight_decay", type="categorical", values=[0.0, 0.01, 0.1]),
    FloatParameter(name="warmup_ratio", type="float", min=0.0, max=0.1),
)

_GENERATE: tuple[AnyParameter, ...] = (
    FloatParameter(name="temperature", type="float", min=0.1, max=1.5),
    FloatParameter(name="top_p", type="float", min=0.5, max=1.0),
    IntParameter(name="top_k", type="int", min=1, max=100, log=True),
    FloatParameter(name="repetition_penalty", type="float", min=1.0, max=1.5),
)


def default_parameters(trainer: TrainerSpec) -> list[AnyParameter]:
    """The search space for a trainer sweep that lists no parameters."""
    if trainer.mode == "generate":
        return list(_GENERATE)
    if trainer.method == "full":
        return list(_FULL)
    return list(_LORA)
