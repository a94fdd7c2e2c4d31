"""`python -m kubetune.operator` and `kubetune operator`: run the Kopf operator.

This is what the Helm chart runs. Options override the environment
(KUBETUNE_WATCH_NAMESPACES, KUBETUNE_DEFAULT_TRAINER_IMAGE, KUBETUNE_DEFAULT_PROMETHEUS_URL,
KUBETUNE_POD_POLICY, KUBETUNE_BIND_ADDRESS, KUBETUNE_ALLOWED_PROMETHEUS_URLS,
KUBETUNE_OPERATOR_NAMESPACE, KUBETUNE_ENGINE_THREADS).

Only the holder of the operator's Lease runs kopf (leader.py): a second operator waits,
serving only /healthz, and starts once the lease is released or expires. A leader that
cannot renew its lease exits at once (status LOST_LEASE_EXIT), so it never acts alongside
its successor; the Deployment restarts it as a waiting replica.
"""

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

import kopf
from aiohttp import web

from kubetune.metrics.urls import UrlRefused
from kubetune.operator.config import OperatorConfig
from kubetune.operator.kube import ApiError, KubeClient
from kubetune.operator.leader import LeaderElector, LeaseSettings
from kubetune.operator.memory import fix_mmap_threshold
from kubetune.operator.options import add_arguments, config_from, lease_settings_from
from kubetune.policy.pod_policy import PodPolicyError

log = logging.getLogger(__name__)

EXIT_BAD_CONFIG = 2
LOST_LEASE_EXIT = 3


def run(args: argparse.Namespace) -> int:
    import kubetune.operator.handlers  # noqa: F401  (registers the handlers)

    fix_mmap_threshold()
    kopf.configure(verbose=args.verbose)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = config_from(args)
        config.prometheus_policy()
        settings = lease_settings_from(args)
    except PodPolicyError as error:
        for problem in error.problems:
            print(f"{error.source}: {problem}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    except (UrlRefused, ValueError) as error:
        print(f"kubetune operator: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    try:
        return asyncio.run(serve(config, settings, args.liveness_port))
    except ApiError as error:
        print(
            f"kubetune operator: lease {settings.namespace}/{settings.name}: {error}",
            file=sys.stderr,
        )
        return 1


async def serve(config: OperatorConfig, settings: LeaseSettings, liveness_port: int) -> int:
    """Wait for the lease, then run kopf while renewing it; release it on a clean stop."""
    kube = KubeClient.from_environment()
    elector = LeaderElector(kube, settings)
    try:
        standby = await _standby_health(config.bind_address, liveness_port)
        try:
            await elector.acquire()
        finally:
            if standby is not None:
                await standby.cleanup()
        keeper = asyncio.create_task(elector.keep(_exit_lost))
        host = f"[{config.bind_address}]" if ":" in config.bind_address else config.bind_address
        liveness = f"http://{host}:{liveness_port}/healthz" if liveness_port else None
        try:
            await kopf.operator(
                standalone=True,  # kopf's own peering is not leader election: the lease is
                clusterwide=not config.namespaces,
                namespaces=config.namespaces,
                liveness_endpoint=liveness,
                memo=kopf.Memo(config=config),
            )
        finally:
            keeper.cancel()
        await elector.release()
    finally:
        await kube.aclose()
    return 0


def _exit_lost() -> None:
    # Another operator may take over from now on: no further write of ours may land.
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(LOST_LEASE_EXIT)


async def _standby_health(address: str, port: int) -> web.AppRunner | None:
    """/healthz while waiting for the lease, so a liveness probe does not restart a standby."""
    if not port:
        return None

    async def healthz(_request: web.Request) -> web.Response:
        return web.Response(text="waiting for the operator lease")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, address, port).start()
    return runner


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kubetune.operator", description="The kubetune Kopf operator."
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
