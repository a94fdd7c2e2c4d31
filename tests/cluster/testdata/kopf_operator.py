"""A tiny kopf operator for the Experiment CRD: proves kopf works against the test cluster.

create -> status.phase=Created (and an Event); update -> status.phase=Updated with the
observed spec; delete -> a ConfigMap `deleted-<name>` records the cleanup, then kopf
removes its finalizer.
"""

from typing import Any

import kopf
import kubernetes


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: object) -> None:
    settings.watching.server_timeout = 20
    settings.watching.client_timeout = 30
    settings.watching.reconnect_backoff = 0.2
    settings.posting.level = 20  # INFO: post kopf.info() as Events


@kopf.on.create("example.kubetune.dev", "v1alpha1", "experiments")
def created(spec: kopf.Spec, patch: kopf.Patch, body: kopf.Body, **_: object) -> None:
    patch.status["phase"] = "Created"
    patch.status["objective"] = spec.get("objective")
    kopf.info(body, reason="Created", message="experiment seen by the test operator")


@kopf.on.update("example.kubetune.dev", "v1alpha1", "experiments")
def updated(spec: kopf.Spec, patch: kopf.Patch, **_: object) -> None:
    patch.status["phase"] = "Updated"
    patch.status["maxTrials"] = spec.get("budget", {}).get("maxTrials")


@kopf.on.delete("example.kubetune.dev", "v1alpha1", "experiments")
def deleted(name: str, namespace: str | None, **_: Any) -> None:
    kubernetes.config.load_kube_config()
    core: Any = kubernetes.client.CoreV1Api()
    core.create_namespaced_config_map(
        namespace,
        {"metadata": {"name": f"deleted-{name}"}, "data": {"by": "kopf"}},
    )
