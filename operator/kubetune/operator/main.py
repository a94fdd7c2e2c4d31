"""`python -m kubetune.operator` and `kubetune operator`: run the Kopf operator.

This is what the Helm chart runs. Options override the environment
(KUBETUNE_WATCH_NAMESPACES, KUBETUNE_DEFAULT_TRAINER_IMAGE, KUBETUNE_DEFAULT_PROMETHEUS_URL,
KUBETUNE_POD_POLICY, KUBETUNE_BIND_ADDRESS, KUBETUNE_ALLOWED_PROMETHEUS_URLS).
"""

import argparse
import logging
import sys
from collections.abc import Sequence

import kopf

from kubetune.metrics.urls import UrlRefused
from kubetune.operator.options import add_arguments, config_from
from kubetune.policy.pod_policy import PodPolicyError

EXIT_BAD_CONFIG = 2


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from(args)
        config.prometheus_policy()
    except PodPolicyError as error:
        for problem in error.problems:
            print(f"{error.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except UrlRefused as error:
        print(f"kubetune operator: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    import kubetune.operator.handlers  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=args.verbose)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    host = f"[{config.bind_address}]" if ":" in config.bind_address else config.bind_address
    liveness = f"http://{host}:{args.liveness_port}/healthz" if args.liveness_port else None
    kopf.run(
        standalone=args.peering is None,
        peering_name=args.peering,
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        liveness_endpoint=liveness,
        memo=kopf.Memo(config=config),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubetune.operator", description="The kubetune Kopf operator."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
