"""Names shared across the process boundary between operator, launcher and trainer.

Environment variables, pod labels, exit statuses and the result file layout.
"""

import hashlib
from typing import Final

# Environment handed to every trial. The prefix is kubetune's own: a user's value
# of that name is refused (trainer) or overridden (template).
ENV_PREFIX: Final = "KUBETUNE_"
ENV_SWEEP: Final = "KUBETUNE_SWEEP"
ENV_TRIAL: Final = "KUBETUNE_TRIAL"
ENV_NAMESPACE: Final = "KUBETUNE_NAMESPACE"
ENV_PARAMS: Final = "KUBETUNE_PARAMS"  # JSON object of the trial's parameters
ENV_METRICS_PORT: Final = "KUBETUNE_METRICS_PORT"
# Built-in trainer only: the spec's `trainer` block as JSON (camelCase keys).
ENV_TRAINER_CONFIG: Final = "KUBETUNE_TRAINER_CONFIG"
ENV_OUTPUT_DIR: Final = "KUBETUNE_OUTPUT_DIR"
ENV_TERMINATION_LOG: Final = "KUBETUNE_TERMINATION_LOG"
# Local runs: a token naming this launch of the trial. Its processes carry it, so a
# resumed run knows a leftover process for the trial's; its result carries it
# (TrialResult.attempt), so a result written by another launch is never taken for its own.
ENV_ATTEMPT: Final = "KUBETUNE_ATTEMPT"
# Seconds the trainer waits, at most, for one scrape after its final update.
ENV_SCRAPE_WAIT: Final = "KUBETUNE_SCRAPE_WAIT_SECONDS"
# Built-in trainer: cache of the locally built tiny model (default ~/.cache/kubetune).
ENV_CACHE_DIR: Final = "KUBETUNE_CACHE_DIR"
# Built-in trainer: names (comma-separated) of its env vars whose values come from
# secrets; it reports those values as REDACTED wherever they would appear.
ENV_SECRET_ENV: Final = "KUBETUNE_SECRET_ENV"
REDACTED: Final = "***"
# Tests only: the trainer process of this rank (under torchrun) fails at step 2, to prove a
# failed rank fails the trial without leaving the others hanging.
ENV_TEST_FAIL_RANK: Final = "KUBETUNE_TEST_FAIL_RANK"
# torchrun's own variables: this process's rank, the process count, the rank on the node.
ENV_RANK: Final = "RANK"
ENV_WORLD_SIZE: Final = "WORLD_SIZE"
ENV_LOCAL_RANK: Final = "LOCAL_RANK"
# trainer.nodes: this pod's node rank (its Indexed Job completion index) and torchrun's static
# rendezvous endpoint, `<node 0's pod DNS name>:RENDEZVOUS_PORT`, where its store listens.
ENV_NODE_RANK: Final = "KUBETUNE_NODE_RANK"
ENV_RENDEZVOUS_ENDPOINT: Final = "KUBETUNE_RENDEZVOUS_ENDPOINT"
RENDEZVOUS_PORT: Final = 29500

# Hugging Face's own variables: the cache folder (trainer.cache mounts it) and offline mode.
ENV_HF_HOME: Final = "HF_HOME"
ENV_HF_HUB_OFFLINE: Final = "HF_HUB_OFFLINE"
# trainer.cache: the volume's name in the trial pod and where the trainer container mounts it.
HF_CACHE_VOLUME: Final = "kubetune-hf-cache"
HF_CACHE_PATH: Final = "/var/cache/huggingface"

# Built-in trainer: the model name that means "the locally built tiny model".
TINY_MODEL: Final = "tiny"

DEFAULT_METRICS_PORT: Final = 9400
DEFAULT_TERMINATION_LOG: Final = "/dev/termination-log"
RESULT_FILE: Final = "result.json"

# Pod labels.
LABEL_SWEEP: Final = "kubetune.dev/sweep"
LABEL_TRIAL: Final = "kubetune.dev/trial"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "kubetune"
# What a pod of a sweep is: a trial, or the one-off prefetch of trainer.cache's model.
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
COMPONENT_TRIAL: Final = "trial"
COMPONENT_PREFETCH: Final = "prefetch"
# The one-off pod that removes pruned and failed trials' checkpoints (keepCheckpoints) from
# trainer.outputDir when a sweep ends; it names the trials in ENV_TIDY_TRIALS.
COMPONENT_TIDY: Final = "tidy"
ENV_TIDY_TRIALS: Final = "KUBETUNE_TIDY_TRIALS"
# The sweep's headless Service that gives trainer.nodes trials' pods their DNS names.
COMPONENT_RENDEZVOUS: Final = "rendezvous"
# Kueue's plain-pod integration: a pod with this label is queued in that LocalQueue (Kueue's
# webhook gates it with kueue.x-k8s.io/admission until the queue admits it).
LABEL_KUEUE_QUEUE: Final = "kueue.x-k8s.io/queue-name"

# Trainer exit statuses (documented in trainer-image/README.md).
EXIT_OK: Final = 0
EXIT_FAILED: Final = 1  # training error, e.g. NaN or diverging loss
EXIT_CONFIG_ERROR: Final = 2  # bad configuration, message names the field
EXIT_STOPPED: Final = 143  # stopped by SIGTERM (pruned or deleted): 128 + 15


def is_kubetune_env(name: str) -> bool:
    return name.startswith(ENV_PREFIX)


def trial_name(sweep: str, number: int) -> str:
    """Deterministic trial (and pod) name: a restart never makes a second pod."""
    return f"{sweep}-t{number:04d}"


def prefetch_name(sweep: str) -> str:
    """The sweep's prefetch pod: no trial name (`<sweep>-tNNNN`) is ever this."""
    return f"{sweep}-prefetch"


def tidy_name(sweep: str) -> str:
    """The sweep's tidy pod: no trial name (`<sweep>-tNNNN`) is ever this."""
    return f"{sweep}-tidy"


def rendezvous_service(sweep: str) -> str:
    """The sweep's headless Service (a DNS-1035 label of at most 63 characters)."""
    name = f"{sweep}-nodes"
    if len(name) <= 63 and name[0].isalpha():
        return name
    return "kt-" + hashlib.sha256(sweep.encode()).hexdigest()[:16] + "-nodes"


def trial_number(sweep: str, trial: str) -> int | None:
    """The number in a name trial_name made for `sweep`; None for any other name."""
    digits = trial.removeprefix(f"{sweep}-t")
    return int(digits) if digits != trial and digits.isdigit() else None


# Address the trainer's metrics server binds to. Trial pods set it from the
# downward API (status.podIP); the local launcher sets 127.0.0.1.
ENV_METRICS_ADDR: Final = "KUBETUNE_METRICS_ADDR"

# The operator process.
OPERATOR_HEALTH_PORT: Final = 8080  # kopf liveness endpoint: /healthz
OPERATOR_METRICS_PORT: Final = 8000  # operator's own Prometheus metrics: /metrics
ENV_DEFAULT_TRAINER_IMAGE: Final = "KUBETUNE_DEFAULT_TRAINER_IMAGE"
ENV_DEFAULT_PROMETHEUS_URL: Final = "KUBETUNE_DEFAULT_PROMETHEUS_URL"
# Comma-separated Prometheus URLs a sweep's spec.metrics.prometheus.url may name (besides
# the default one); see kubetune.metrics.urls for the matching rule.
ENV_ALLOWED_PROMETHEUS_URLS: Final = "KUBETUNE_ALLOWED_PROMETHEUS_URLS"
ENV_WATCH_NAMESPACES: Final = "KUBETUNE_WATCH_NAMESPACES"  # comma-separated; empty: all
# The admin pod policy: a level name, or the policy as YAML/JSON text.
ENV_POD_POLICY: Final = "KUBETUNE_POD_POLICY"
# Address the operator's /metrics and /healthz listen on (default: every interface).
ENV_BIND_ADDRESS: Final = "KUBETUNE_BIND_ADDRESS"
DEFAULT_BIND_ADDRESS: Final = "0.0.0.0"
# How many engine calls (Optuna asks, GP fits) the operator runs at once, across all sweeps.
ENV_ENGINE_THREADS: Final = "KUBETUNE_ENGINE_THREADS"
# Where the operator's leader-election Lease lives (the chart sets it to its namespace).
ENV_OPERATOR_NAMESPACE: Final = "KUBETUNE_OPERATOR_NAMESPACE"
DEFAULT_OPERATOR_NAMESPACE: Final = "kubetune"  # the install namespace the docs use
OPERATOR_LEASE: Final = "kubetune-operator"
