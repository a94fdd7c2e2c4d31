"""Kopf handlers for HyperparameterSweep and its trial pods. Thin: the work is in runtime.py.

- a daemon per sweep runs its reconcile loop (woken at once by pod events and spec edits);
- an index of trial pods by sweep feeds it, filled before any handler runs after a
  (re)start, so a restarted operator sees every existing pod before deciding anything;
- indexes of trial workloads (Job, JobSet, PyTorchJob, TrainJob) add the trials Kueue holds
  suspended (spec.queueName), which have no pod yet, and those whose workload failed;
- create / resume / update handlers wake the loop; delete removes the sweep's pods.
"""

import logging
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import kopf

from kubetune import API_GROUP, API_VERSION, PLURAL, conventions
from kubetune.builders.pod import trial_selector
from kubetune.operator.config import OperatorConfig
from kubetune.operator.effects import Event
from kubetune.operator.engine_pool import EnginePool
from kubetune.operator.kube import ApiError, KubeClient, bearer_token, load_configuration
from kubetune.operator.metrics import METRICS
from kubetune.operator.pod_state import PodView, is_primary, job_view, view
from kubetune.operator.runtime import SweepRuntime
from kubetune.operator.trial_objects import delete_custom_workloads
from kubetune.spec.workload_kinds import JOBSET, PYTORCH_JOB, TRAINJOB

log = logging.getLogger(__name__)

FINALIZER = f"{API_GROUP}/cleanup"
SWEEPS = (API_GROUP, API_VERSION, PLURAL)
TRIAL_PODS = {conventions.LABEL_MANAGED_BY: conventions.MANAGED_BY}
NO_PODS: Mapping[tuple[str, str], Iterable[PodView]] = MappingProxyType({})


class Registry(dict[tuple[str, str], SweepRuntime]):
    """Live sweep runtimes by (namespace, name), shared by every handler through memo."""


def _state(memo: Any) -> tuple[KubeClient, OperatorConfig, Registry]:
    return memo["kube"], memo["config"], memo["registry"]


def _engine(memo: Any) -> EnginePool:
    pool: EnginePool = memo["engine"]
    return pool


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """The same credentials the operator's own client uses (KUBECONFIG read at call time)."""
    cfg = load_configuration()
    header = bearer_token(cfg)
    scheme, _sep, token = header.partition(" ") if header else (None, "", None)
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme=scheme if token else None,
        token=token or scheme,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
        trust_env=settings.networking.trust_env,
    )


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Keep kopf's bookkeeping in annotations: status belongs to kubetune's schema.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    # Kopf's own "handler succeeded" chatter stays out of Events; ours are explicit.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.reconnect_backoff = 0.5
    config = memo.get("config") or OperatorConfig.from_environment()
    memo["config"] = config
    memo["kube"] = KubeClient.from_environment()
    memo["registry"] = Registry()
    # Every sweep's engine work shares these few threads (engine_pool.py: bounded memory).
    memo["engine"] = EnginePool(config.engine_threads)
    if config.metrics_port and not memo.get("metrics_served"):
        METRICS.serve(config.metrics_port, config.bind_address)
        memo["metrics_served"] = True


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    kube, _config, registry = _state(memo)
    for runtime in list(registry.values()):
        await runtime.close()
    registry.clear()
    _engine(memo).shutdown()
    await kube.aclose()


@kopf.index("pods", labels=TRIAL_PODS)
def trial_pods(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], PodView] | None:
    sweep = labels.get(conventions.LABEL_SWEEP)
    # A worker of a multi-pod workload is no trial pod of its own: its failure reaches
    # the trial through the workload's Failed condition (trial_workloads).
    if not sweep or namespace is None or not is_primary(body):
        return None
    return {(namespace, sweep): view(body)}


def _workload_entry(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body
) -> dict[tuple[str, str], PodView] | None:
    """Only the suspended and the failed ones: otherwise a workload's pods tell its trial's
    state."""
    sweep = labels.get(conventions.LABEL_SWEEP)
    seen = job_view(body)
    if not sweep or namespace is None or seen is None:
        return None
    return {(namespace, sweep): seen}


@kopf.index("batch", "v1", "jobs", labels=TRIAL_PODS)
def trial_jobs(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], PodView] | None:
    return _workload_entry(namespace, labels, body)


# A kind whose CRD the cluster lacks is simply not watched (kopf serves what it discovers).
@kopf.index("jobset.x-k8s.io", "v1alpha2", "jobsets", labels=TRIAL_PODS)
def trial_jobsets(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], PodView] | None:
    return _workload_entry(namespace, labels, body)


@kopf.index("kubeflow.org", "v1", "pytorchjobs", labels=TRIAL_PODS)
def trial_pytorchjobs(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], PodView] | None:
    return _workload_entry(namespace, labels, body)


@kopf.index("trainer.kubeflow.org", "v1alpha1", "trainjobs", labels=TRIAL_PODS)
def trial_trainjobs(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> dict[tuple[str, str], PodView] | None:
    return _workload_entry(namespace, labels, body)


@kopf.on.event("jobset.x-k8s.io", "v1alpha2", "jobsets", labels=TRIAL_PODS)
@kopf.on.event("kubeflow.org", "v1", "pytorchjobs", labels=TRIAL_PODS)
@kopf.on.event("trainer.kubeflow.org", "v1alpha1", "trainjobs", labels=TRIAL_PODS)
@kopf.on.event("batch", "v1", "jobs", labels=TRIAL_PODS)
def trial_job_changed(
    namespace: str | None, labels: Mapping[str, str], memo: Any, **_: Any
) -> None:
    """A trial workload was admitted, suspended again or failed: reconcile now."""
    runtime = memo["registry"].get((namespace, labels.get(conventions.LABEL_SWEEP, "")))
    if runtime is not None:
        runtime.poke()


@kopf.on.event("pods", labels=TRIAL_PODS)
def trial_pod_changed(
    namespace: str | None, labels: Mapping[str, str], body: kopf.Body, memo: Any, **_: Any
) -> None:
    runtime = memo["registry"].get((namespace, labels.get(conventions.LABEL_SWEEP, "")))
    if runtime is None:
        return
    phase = (body.get("status") or {}).get("phase")
    # A worker's end frees no trial slot (turnover counts from the trial's end).
    if phase in ("Succeeded", "Failed") and is_primary(body):
        runtime.pod_finished(str(body.get("metadata", {}).get("uid", "")))
    else:
        runtime.poke()


@kopf.on.create(*SWEEPS)
@kopf.on.resume(*SWEEPS)
@kopf.on.update(*SWEEPS, field="spec")
def sweep_changed(namespace: str | None, name: str, memo: Any, **_: Any) -> None:
    runtime = memo["registry"].get((namespace, name))
    if runtime is not None:
        runtime.poke()


@kopf.daemon(*SWEEPS, cancellation_backoff=2.0)
async def sweep_loop(
    namespace: str | None,
    name: str,
    uid: str,
    body: kopf.Body,
    memo: Any,
    stopped: kopf.DaemonStopped,
    # Kopf passes the index by the name of its function; the default only satisfies
    # kopf's typing of daemon handlers, which has no parameter for it.
    trial_pods: Mapping[tuple[str, str], Iterable[PodView]] = NO_PODS,
    trial_jobs: Mapping[tuple[str, str], Iterable[PodView]] = NO_PODS,
    trial_jobsets: Mapping[tuple[str, str], Iterable[PodView]] = NO_PODS,
    trial_pytorchjobs: Mapping[tuple[str, str], Iterable[PodView]] = NO_PODS,
    trial_trainjobs: Mapping[tuple[str, str], Iterable[PodView]] = NO_PODS,
    **_: Any,
) -> None:
    kube, config, registry = _state(memo)
    namespace = namespace or "default"  # the CRD is namespaced; this only satisfies typing
    runtime = SweepRuntime(namespace, name, uid, kube, config, _engine(memo))
    registry[(namespace, name)] = runtime

    def post(event: Event) -> None:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)

    def adopt(manifest: dict[str, Any]) -> None:
        kopf.adopt(manifest, owner=body)

    try:
        while not stopped:
            try:
                views = [
                    *trial_jobs.get((namespace, name), []),
                    *trial_jobsets.get((namespace, name), []),
                    *trial_pytorchjobs.get((namespace, name), []),
                    *trial_trainjobs.get((namespace, name), []),
                    *trial_pods.get((namespace, name), []),
                ]
                await runtime.reconcile_once(body, views, post, adopt)
            except Exception as error:
                # One bad sweep must never stop the others: count it, say it, retry.
                log.exception("%s/%s: reconcile failed", namespace, name)
                METRICS.error(type(error).__name__)
                runtime.retry_soon = True
            await runtime.wait()
    finally:
        if registry.get((namespace, name)) is runtime:
            del registry[(namespace, name)]
        await runtime.close()


@kopf.on.delete(*SWEEPS)
async def sweep_deleted(
    namespace: str | None, name: str, spec: Mapping[str, Any], memo: Any, **_: Any
) -> None:
    kube, _config, _registry = _state(memo)
    namespace = namespace or "default"
    try:
        # A kind kubetune does not know, first as well: its controller would remake its pods.
        await delete_custom_workloads(kube, namespace, name, spec)
        for job in await kube.list_jobs(namespace, trial_selector(name)):
            meta = job.get("metadata", {})
            await kube.delete_job(namespace, meta.get("name", ""), uid=meta.get("uid"))
        # TrainJobs, JobSets and PyTorchJobs first too: their controllers would remake
        # deleted pods (a TrainJob's JobSet is its own, and goes with it).
        for kind in (TRAINJOB, JOBSET, PYTORCH_JOB):
            args = (kind.group, kind.version, kind.plural, namespace)
            for obj in await kube.list_objects(*args, trial_selector(name)):
                meta = obj.get("metadata", {})
                await kube.delete_object(*args, meta.get("name", ""), str(meta.get("uid") or ""))
        pods = await kube.list_pods(namespace, trial_selector(name))
        for pod in pods:
            meta = pod.get("metadata", {})
            await kube.delete_pod(namespace, meta.get("name", ""), uid=meta.get("uid"))
    except ApiError as error:
        METRICS.error(f"DeletePod:{error.status}")
        raise kopf.TemporaryError(f"could not remove trial pods: {error}", delay=2) from error
    METRICS.forget_sweep(namespace, name)
