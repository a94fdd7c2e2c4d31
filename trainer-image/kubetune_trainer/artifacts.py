"""What a trial leaves for its user: <output dir>/final/, and which checkpoints stay.

final/ holds the trained adapter (LoRA, QLoRA) or the whole model (full), its
tokenizer, and best.yaml: the trial's parameters in the shape a sweep file takes them
back (`trainer.args`), so the folder alone says how it was trained. It loads with
`PeftModel.from_pretrained(base, "final")` (or `from_pretrained("final")` for `full`)
and is what `trainer.adapter` takes in generate mode.

trainer.keepCheckpoints decides what a trial that ran to its end keeps. Only the
trial's own process can reach its output volume, so it tidies up itself, last thing
before its result: the operator never mounts a tenant's volume.
"""

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from kubetune import trial_folders
from kubetune_trainer.config import RunConfig
from kubetune_trainer.log import log

FINAL_DIR = trial_folders.FINAL_DIR
PARAMS_FILE = "best.yaml"
_TMP_PREFIX = ".final.tmp-"


def params_yaml(config: RunConfig) -> str:
    """The trial's parameters over the sweep's fixed args, as the sweep file's trainer block."""
    spec = config.trainer
    args: dict[str, Any] = {**spec.args, **config.params}
    header = (
        f"# Trial {config.identity.trial or '(local)'}: model {spec.model}, method {spec.method}\n"
    )
    return header + yaml.safe_dump({"trainer": {"args": args}}, sort_keys=False)


def save_final(
    model: Any, tokenizer: Any, config: RunConfig, state_dict: dict[str, Any] | None = None
) -> Path:
    """Write final/ atomically (a temporary folder renamed into place): a trial killed
    while saving leaves the previous final/ or none, never half of one. `state_dict`: the
    whole weights of a sharded model (trainer.args.fsdp), gathered on this rank."""
    output_dir = config.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.glob(f"{_TMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = output_dir / f"{_TMP_PREFIX}{os.getpid()}"
    if state_dict is None:
        model.save_pretrained(tmp)
    else:
        model.save_pretrained(tmp, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    (tmp / PARAMS_FILE).write_text(params_yaml(config))
    target = output_dir / FINAL_DIR
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


def keeps_final(config: RunConfig) -> bool:
    return config.trainer.keep_checkpoints != "none"


def tidy(config: RunConfig) -> None:
    """After a trial that ran to its end: drop what keepCheckpoints does not keep.

    Not after a stop (SIGTERM): the trial may be preempted and resume from its checkpoint.
    A folder that cannot be removed is a warning: the result matters more than the space.
    """
    keep = config.trainer.keep_checkpoints
    # Succeeded or failed: the same rule (trial_folders) as for a pruned trial's folder.
    names = trial_folders.doomed(keep, "Succeeded")
    for problem in trial_folders.remove(config.output_dir, names):
        log.warning(f"{problem} (keepCheckpoints {keep})")
