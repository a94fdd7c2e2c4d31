"""`python -m kubetune_trainer tidy`: remove the checkpoints (and with keepCheckpoints none,
final/) of a sweep's trials that ended for good without tidying up themselves: pruned or
failed trials were stopped by SIGTERM, which they cannot tell from a preemption, so they
kept a checkpoint to resume from. The operator runs this in one pod when the sweep ends,
with the trials' volumes mounted (it never mounts a tenant's volume itself).

Reads the trainer block (KUBETUNE_TRAINER_CONFIG: outputDir, keepCheckpoints), the sweep
(KUBETUNE_SWEEP) and the trials (KUBETUNE_TIDY_TRIALS, comma-separated); only names of the
sweep's own trials are touched. Exit 0, or 1 when a folder could not be removed.
"""

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from kubetune import conventions, trial_folders
from kubetune.spec.trainer import TrainerSpec


def run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    if argv:
        print(f"tidy takes no arguments, got {' '.join(argv)[:80]!r}", file=sys.stderr)
        return conventions.EXIT_CONFIG_ERROR
    spec = TrainerSpec.model_validate(json.loads(env.get(conventions.ENV_TRAINER_CONFIG, "{}")))
    sweep = env.get(conventions.ENV_SWEEP, "")
    if not spec.output_dir or not sweep:
        print("tidy needs trainer.outputDir and the sweep's name", file=sys.stderr)
        return conventions.EXIT_CONFIG_ERROR
    names = trial_folders.doomed(spec.keep_checkpoints, "Pruned")
    trials = [t for t in env.get(conventions.ENV_TIDY_TRIALS, "").split(",") if t]
    problems: list[str] = []
    tidied = 0
    for trial in trials:
        if conventions.trial_number(sweep, trial) is None:
            problems.append(f"{trial[:80]!r} is no trial of {sweep}: skipped")
            continue
        found = trial_folders.remove(Path(spec.output_dir) / trial, names)
        problems += found
        tidied += not found
    for problem in problems:
        print(problem, file=sys.stderr)
    print(
        f"keepCheckpoints {spec.keep_checkpoints}: removed {', '.join(names) or 'nothing'} "
        f"of {tidied} of {len(trials)} trial(s) in {spec.output_dir}"
    )
    return 1 if problems else conventions.EXIT_OK
