"""The names `kubetune run` writes in an output folder.

One list for the writers and for --overwrite, which removes these and nothing else:
an output folder may be a folder the user also keeps their own files in.
"""

STATE_FILE = "state.json"
STATE_TMP = STATE_FILE + ".tmp"
TRIALS_DIR = "trials"
TRIALS_CSV = "trials.csv"
BEST_YAML = "best.yaml"
# A link to the best trial's final/ artifacts (adapter or model, tokenizer, best.yaml).
BEST_DIR = "best"
JOURNAL_FILE = "optuna.journal"
JOURNAL_LOCK = JOURNAL_FILE + ".lock"
OBJECTIVE_PNG = "objective.png"
PARALLEL_PNG = "parallel_coordinates.png"
IMPORTANCE_PNG = "param_importance.png"

# Held for a run's lifetime (see lock.py). Not an output: --overwrite keeps it, since the
# run that replaces the outputs holds it, and a new file would be a second, free lock.
LOCK_FILE = ".kubetune.lock"

OUTPUT_NAMES = (
    STATE_FILE,
    STATE_TMP,
    TRIALS_DIR,
    TRIALS_CSV,
    BEST_YAML,
    BEST_DIR,
    JOURNAL_FILE,
    JOURNAL_LOCK,
    OBJECTIVE_PNG,
    PARALLEL_PNG,
    IMPORTANCE_PNG,
)

# In trials/<trial>/: the trial's stdout and stderr, and (with a per-attempt suffix) the
# termination log it writes its result to.
TRIAL_LOG = "trial.log"
TERMINATION_LOG = "termination-log"


def termination_log_name(attempt: str | None) -> str:
    """Each launch its own file: a leftover process of an earlier launch that writes its
    result late writes where the current launch's result is not looked for."""
    return f"{TERMINATION_LOG}.{attempt}" if attempt else TERMINATION_LOG
