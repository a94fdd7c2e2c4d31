"""Command-line options of the operator; argparse only, so `kubetune --help` stays fast."""

import argparse
import dataclasses

from kubetune import conventions
from kubetune.operator.config import OperatorConfig
from kubetune.policy.pod_policy import load_pod_policy


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
    peering = parser.add_mutually_exclusive_group()
    peering.add_argument(
        "--standalone",
        action="store_true",
        default=True,
        help="Run without peering (the default: one replica).",
    )
    peering.add_argument(
        "--peering",
        metavar="NAME",
        help="Coordinate with other replicas through this KopfPeering object (HA).",
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
        "file {level, allowedServiceAccounts} "
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
    parser.add_argument("-v", "--verbose", action="store_true", help="Debug logging.")


def config_from(args: argparse.Namespace) -> OperatorConfig:
    """Raises PodPolicyError when the pod policy (option or environment) cannot be read."""
    config = OperatorConfig.from_environment()
    changes: dict[str, object] = {"metrics_port": args.metrics_port or None}
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
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]
