"""Command-line options of the operator; argparse only, so `kubetune --help` stays fast."""

import argparse
import dataclasses
from typing import TYPE_CHECKING

from kubetune import conventions
from kubetune.operator.config import DEFAULT_ENGINE_THREADS, OperatorConfig, engine_threads
from kubetune.policy.pod_policy import load_pod_policy

if TYPE_CHECKING:
    from kubetune.operator.leader import LeaseSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help=f"Watch this namespace (repeatable; default ${conventions.ENV_WATCH_NAMESPACES}, "
        "else all namespaces).",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="Watch every namespace.")
    parser.add_argument(
        "--lease-namespace",
        metavar="NS",
        help="Namespace of the leader-election Lease: only its holder acts, other operators "
        f"wait (default ${conventions.ENV_OPERATOR_NAMESPACE}, else the pod's namespace, "
        f"else {conventions.DEFAULT_OPERATOR_NAMESPACE}).",
    )
    parser.add_argument(
        "--lease-name",
        default=conventions.OPERATOR_LEASE,
        metavar="NAME",
        help="Name of the Lease (default %(default)s).",
    )
    parser.add_argument(
        "--lease-duration",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="How long a lease not renewed stays held (default %(default)s); the leader "
        "renews it every 2/15 of that and stops if it could not for 2/3 of it.",
    )
    parser.add_argument(
        "--liveness-port",
        type=int,
        default=conventions.OPERATOR_HEALTH_PORT,
        help="Port of the /healthz liveness endpoint; 0 disables it (default %(default)s).",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=conventions.OPERATOR_METRICS_PORT,
        help="Port of the operator's own /metrics; 0 disables it (default %(default)s).",
    )
    parser.add_argument(
        "--bind-address",
        metavar="ADDR",
        help="Address /metrics and /healthz listen on "
        f"(default ${conventions.ENV_BIND_ADDRESS}, else {conventions.DEFAULT_BIND_ADDRESS}).",
    )
    parser.add_argument(
        "--pod-policy",
        metavar="LEVEL|FILE",
        help="What trial pods may ask for: restricted, baseline, privileged, or a YAML/JSON "
        "file {level, allowedServiceAccounts, trainingRuntimes} "
        f"(default ${conventions.ENV_POD_POLICY}, else restricted).",
    )
    parser.add_argument("--default-image", help="Trainer image for sweeps that name none.")
    parser.add_argument("--prometheus-url", help="Prometheus for sweeps that name none.")
    parser.add_argument(
        "--allow-prometheus-url",
        action="append",
        default=[],
        metavar="URL",
        help="A Prometheus URL sweeps may name in spec.metrics.prometheus.url, itself or a path "
        f"below it (repeatable; default ${conventions.ENV_ALLOWED_PROMETHEUS_URLS}, "
        "comma-separated; the default URL is always allowed).",
    )
    parser.add_argument(
        "--nodes-workload",
        choices=("auto", "jobset", "job"),
        default="auto",
        help="What a trainer.nodes trial runs as: a JobSet (needs the JobSet API), an Indexed "
        "Job with a headless Service (plain Kubernetes), or auto: a JobSet where the cluster "
        "serves jobset.x-k8s.io/v1alpha2 (default %(default)s). Chosen once per sweep and "
        "recorded on it, so a restart never changes a running sweep's trials.",
    )
    parser.add_argument(
        "--engine-threads",
        metavar="N",
        help="How many engine calls (Optuna asks, Gaussian-process fits) run at once across all "
        "sweeps; the others wait their turn. Engine work is CPU-bound, so more add memory "
        "(each GP ask holds its own torch buffers), not speed "
        f"(default ${conventions.ENV_ENGINE_THREADS}, else {DEFAULT_ENGINE_THREADS}).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")


def config_from(args: argparse.Namespace) -> OperatorConfig:
    """Raises PodPolicyError when the pod policy (option or environment) cannot be read,
    ValueError naming the option or variable for a bad engine thread count."""
    config = OperatorConfig.from_environment()
    changes: dict[str, object] = {
        "metrics_port": args.metrics_port or None,
        "nodes_workload": args.nodes_workload,
    }
    if args.namespace:
        changes["namespaces"] = tuple(args.namespace)
    if args.all_namespaces:
        changes["namespaces"] = ()
    if args.default_image:
        changes["default_image"] = args.default_image
    if args.prometheus_url:
        changes["default_prometheus_url"] = args.prometheus_url
    if args.bind_address:
        changes["bind_address"] = args.bind_address
    if args.pod_policy:
        changes["pod_policy"] = load_pod_policy(args.pod_policy, "--pod-policy")
    if args.allow_prometheus_url:
        changes["allowed_prometheus_urls"] = tuple(args.allow_prometheus_url)
    if args.engine_threads is not None:
        changes["engine_threads"] = engine_threads(args.engine_threads, "--engine-threads")
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


def lease_settings_from(args: argparse.Namespace) -> "LeaseSettings":
    """Raises ValueError naming the option when the timings do not fit together."""
    from kubetune.operator.leader import LeaseSettings, operator_namespace

    duration = args.lease_duration
    if not duration > 1:
        raise ValueError(f"--lease-duration: must be more than 1 second, got {duration}")
    return LeaseSettings(
        namespace=args.lease_namespace or operator_namespace(),
        name=args.lease_name,
        duration=duration,
        renew_deadline=duration * 2 / 3,
        renew_every=duration * 2 / 15,
    )
