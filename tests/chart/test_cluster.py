"""The rendered chart on the test cluster: kubectl applies it, and the operator pod it
defines runs the real operator, which answers on /healthz and hands its defaults to trials.

The simulated API server stores Deployments, Services and RBAC objects (no controller acts on
them); the Prometheus operator's kinds come from stand-in CRDs (testdata/monitoring-crds.yaml),
as kube-prometheus-stack would install them. So every rendered manifest must apply.
"""

import asyncio
import contextlib
import json
import time
from typing import Any

import httpx
import pytest
import yaml

from kubetune import API_GROUP, PLURAL, conventions
from kubetune.builders.pod import build_trial_pod
from kubetune.metrics import PrometheusSource, TrialReading, TrialTarget
from kubetune.spec import effective_spec, parse_sweep
from tests.chart.rendering import CHART, REPO, TOGGLES, combination_values, one
from tests.chart.rendering import render as render_chart
from tests.cluster.cluster import Cluster
from tests.cluster.errors import ApiError
from tests.cluster.pod_discovery import PodDiscovery
from tests.cluster.prometheus import Prometheus as ClusterPrometheus
from tests.cluster.prometheus import free_port

pytestmark = pytest.mark.slow

MONITORING_CRDS = REPO / "tests" / "chart" / "testdata" / "monitoring-crds.yaml"
CRD = CHART / "crds" / f"{PLURAL}.{API_GROUP}.yaml"
EXAMPLE = REPO / "examples" / "tiny-sweep.yaml"


def render(values: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """The chart as `helm install -n <namespace>` would create it (no test hooks)."""
    manifests = render_chart(values)
    for manifest in manifests:
        if manifest["metadata"].get("namespace") == "kubetune":
            manifest["metadata"]["namespace"] = namespace
        for subject in manifest.get("subjects", []):
            subject["namespace"] = namespace
    return [m for m in manifests if "helm.sh/hook" not in m["metadata"].get("annotations", {})]


def test_kubectl_applies_the_chart(cluster: Cluster, namespace: str) -> None:
    cluster.apply_crd(CRD)
    cluster.apply_crd(MONITORING_CRDS)
    values = combination_values(frozenset(TOGGLES), "cluster")
    manifests = render(values, namespace)
    for manifest in manifests:
        done = cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        assert done.returncode == 0, f"{manifest['kind']}: {done.stderr}"
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "ClusterRole", "PodMonitor", "PrometheusRule"} <= kinds
    assert {
        "NetworkPolicy",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    } <= kinds
    for manifest in manifests:
        scope = ["-n", namespace] if manifest["metadata"].get("namespace") else []
        name = manifest["metadata"]["name"]
        got = cluster.kubectl("get", manifest["kind"].lower(), name, *scope, "-o", "json")
        assert got.returncode == 0, f"{manifest['kind']}/{name}: {got.stderr}"
        assert json.loads(got.stdout)["kind"] == manifest["kind"]
    listed = cluster.kubectl(
        "get", "configmaps", "-n", namespace, "-l", "grafana_dashboard=1", "-o", "name"
    )
    assert sorted(listed.stdout.split()) == [
        "configmap/kubetune-dashboard-operator",
        "configmap/kubetune-dashboard-sweep",
    ]


def test_kubectl_applies_the_namespaced_install(cluster: Cluster, namespace: str) -> None:
    """With watchNamespaces the chart grants Roles per namespace instead of ClusterRoles."""
    cluster.apply_crd(CRD)
    values = combination_values(frozenset(), "namespaced")
    for watched in values["watchNamespaces"]:
        if cluster.get("namespaces", watched) is None:
            cluster.kubectl("create", "namespace", watched, check=True)
    manifests = render(values, namespace)
    kinds = [m["kind"] for m in manifests]
    assert "Role" in kinds and "RoleBinding" in kinds
    for manifest in manifests:
        done = cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
        assert done.returncode == 0, f"{manifest['kind']}: {done.stderr}"
    roles = cluster.kubectl("get", "roles", "-A", "-o", "name")
    # One per watched namespace, and the leader-election one in the release namespace.
    assert (
        roles.stdout.count("role.rbac.authorization.k8s.io/") == len(values["watchNamespaces"]) + 1
    )


def test_the_chart_crd_serves_the_example_sweep(cluster: Cluster, namespace: str) -> None:
    cluster.apply_crd(CRD)
    applied = cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    assert applied.returncode == 0, applied.stderr
    listed = cluster.kubectl("get", "hps", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[:2] == ["NAME", "PHASE"]
    assert "tiny-sweep" in listed.stdout


def _operator_pod(values: dict[str, Any], namespace: str) -> dict[str, Any]:
    """The pod the chart's Deployment asks for, as its ReplicaSet would create it."""
    deployment = one(render(values, namespace), "Deployment")
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{deployment['metadata']['name']}-0",
            "namespace": namespace,
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }


def _wait_live(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not live after {timeout}s")
        time.sleep(0.5)


def test_operator_pod_from_the_chart_is_live_and_applies_defaults(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply_crd(CRD)
    kubelet = cluster.kubelet
    assert kubelet is not None
    # The simulated kubelet mounts no service-account token: hand the pod a kubeconfig.
    kubelet.extra_env["KUBECONFIG"] = str(cluster.kubeconfig)
    # Free ports instead of 8080/8000: pods share this machine's network namespace.
    live_port, metrics_port = free_port(), free_port()
    values = {
        "watchNamespaces": [namespace],
        "defaults": {"trainerImage": "registry.example/trainer:test"},
        "podPolicy": {"level": "baseline"},
        "operator": {
            # Listen on the pod's own address only: 127.0.0.1 must then not answer.
            "bindAddress": "podIP",
            "extraArgs": ["--liveness-port", str(live_port), "--metrics-port", str(metrics_port)],
        },
    }
    pod = cluster.create(_operator_pod(values, namespace))
    name = pod["metadata"]["name"]
    try:
        cluster.wait_for_pod_phase(namespace, name, "Running")
        address = cluster.pod_ip(namespace, name)
        assert address != "127.0.0.1"
        _wait_live(f"http://{address}:{live_port}/healthz")
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{live_port}/healthz", timeout=2)
        sweep = yaml.safe_load(EXAMPLE.read_text())
        sweep["metadata"]["namespace"] = namespace
        sweep["spec"]["suspend"] = False
        cluster.create(sweep)
        trial = cluster.wait_for(
            lambda: cluster.list_objects(
                "pods", namespace, label_selector=f"{conventions.LABEL_SWEEP}=tiny-sweep"
            ),
            timeout=60,
            message="the operator created no trial pod",
        )[0]
        # The sweep names no image: the chart's default reached the trial.
        assert trial["spec"]["containers"][0]["image"] == "registry.example/trainer:test"
        # The chart's pod policy reached the operator: the trial runs without an API token.
        assert trial["spec"]["automountServiceAccountToken"] is False
        metrics = httpx.get(f"http://{address}:{metrics_port}/metrics", timeout=5).text
        assert "kubetune_reconcile_seconds_count" in metrics
        logs = cluster.pod_logs(namespace, name)
        assert "Traceback" not in logs, logs
    finally:
        kubelet.extra_env.pop("KUBECONFIG", None)
        cluster.delete(PLURAL, "tiny-sweep", namespace, group=API_GROUP)
        for leftover in cluster.list_objects("pods", namespace):
            # The operator, still running, may remove a trial pod between the list and here.
            with contextlib.suppress(ApiError):
                cluster.delete("pods", leftover["metadata"]["name"], namespace, grace_period=0)


# A trial container that serves one trainer series where the operator says it should.
_EXPORTER = """
import os, time
from prometheus_client import CollectorRegistry, Gauge, start_http_server
labels = {k: os.environ['KUBETUNE_' + k.upper()] for k in ('sweep', 'trial', 'namespace')}
registry = CollectorRegistry()
Gauge('kubetune_trial_step', 'step', list(labels), registry=registry).labels(**labels).set(7)
start_http_server(int(os.environ['KUBETUNE_METRICS_PORT']), os.environ['KUBETUNE_METRICS_ADDR'], registry)
time.sleep(120)
"""


def _trial_pod(namespace: str) -> dict[str, Any]:
    sweep = parse_sweep(
        {
            "apiVersion": f"{API_GROUP}/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "demo", "namespace": namespace},
            "spec": {
                "parameters": [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}],
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "trial",
                                "image": "python:3.11-slim",
                                "command": ["python", "-c", _EXPORTER],
                            }
                        ]
                    }
                },
            },
        }
    )
    return build_trial_pod(sweep, effective_spec(sweep.spec), 0, {"x": 0.5})


def test_fallback_scrape_config_scrapes_trial_pods_on_the_cluster(
    cluster: Cluster, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The chart's pod job, fed the targets Kubernetes SD (role pod) would give.

    Debian's Prometheus has no Kubernetes SD, so the test cluster's discovery bridge
    serves the same targets and __meta_kubernetes_pod_* labels over HTTP SD.
    """
    manifests = render(combination_values(frozenset({"scrapeConfig"}), "cluster"), namespace)
    config_map = one(manifests, "ConfigMap", "kubetune-scrape-config")
    job = yaml.safe_load(config_map["data"]["kubetune-scrape-config.yaml"])["scrape_configs"][0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    trial = cluster.create(_trial_pod(namespace))
    # A pod that asks to be scraped but is no trial of kubetune's.
    other = cluster.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "other",
                "namespace": namespace,
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9400"},
            },
            "spec": {
                "containers": [
                    {
                        "name": "c",
                        "image": "x",
                        "ports": [{"name": "metrics", "containerPort": 9400}],
                    }
                ]
            },
        }
    )
    discovery = PodDiscovery(cluster, namespaces=[namespace]).start()
    del job["kubernetes_sd_configs"]
    job["http_sd_configs"] = [{"url": discovery.url, "refresh_interval": "1s"}]
    prometheus = ClusterPrometheus(tmp_path_factory.mktemp("fallback"), extra_scrape_configs=[job])
    try:
        cluster.wait_for_pod_phase(namespace, trial["metadata"]["name"], "Running")
        cluster.wait_for_pod_phase(namespace, other["metadata"]["name"], "Running")
        with prometheus:
            (series,) = prometheus.wait_for(
                'kubetune_trial_step{job="kubetune-trials"}', timeout=45
            )
            targets = prometheus.targets()
    finally:
        discovery.stop()
    assert series["metric"]["namespace"] == namespace
    assert series["metric"]["sweep"] == "demo"
    assert series["metric"]["trial"] == trial["metadata"]["name"]
    assert series["metric"]["pod"] == trial["metadata"]["name"]
    assert [t["labels"]["pod"] for t in targets] == [trial["metadata"]["name"]]


# A trial container that serves whatever exposition text it is given: a tenant's trainer.
_FORGER = """
import os, http.server
text = os.environ['EXPOSITION'].encode()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain; version=0.0.4')
        self.end_headers()
        self.wfile.write(text)
    def log_message(self, *args):
        pass
address = (os.environ['KUBETUNE_METRICS_ADDR'], int(os.environ['KUBETUNE_METRICS_PORT']))
http.server.HTTPServer(address, Handler).serve_forever()
"""


def _serving_pod(namespace: str, sweep: str, number: int, exposition: str) -> dict[str, Any]:
    """Trial pod `number` of a sweep, as the operator builds it, serving `exposition`."""
    container = {
        "name": "trial",
        "image": "python:3.11-slim",
        "command": ["python", "-c", _FORGER],
        "env": [{"name": "EXPOSITION", "value": exposition}],
    }
    parsed = parse_sweep(
        {
            "apiVersion": f"{API_GROUP}/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": sweep, "namespace": namespace},
            "spec": {
                "parameters": [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}],
                "template": {"spec": {"containers": [container]}},
            },
        }
    )
    return build_trial_pod(parsed, effective_spec(parsed.spec), number, {"x": 0.5})


def _series(labels: dict[str, str], **values: float) -> str:
    text = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "".join(f"kubetune_trial_{name}{{{text}}} {value}\n" for name, value in values.items())


def test_forged_labels_do_not_reach_another_sweep(
    cluster: Cluster, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Pods that label their series as another sweep's trials feed it nothing.

    Through the chart's pod job (honor_labels false, labels from pod metadata) and the
    operator's PrometheusSource (pod pinned to the trial): only the victim's own trial pod
    counts, though every forger is scraped.
    """
    victim, attacker = namespace, f"{namespace}-x"
    cluster.kubectl("create", "namespace", attacker, check=True)
    forged = {"namespace": victim, "sweep": "s", "trial": "s-t0000", "pod": "s-t0000"}
    forged_next = {**forged, "trial": "s-t0001", "pod": "s-t0001"}
    lie = _series(forged, eval_loss=0.001, eval_step=99, step=99, done=1) + _series(
        forged_next, eval_loss=0.001, eval_step=99, step=99
    )
    pods = [
        # The victim's real trial, labelling its series as the trainer does.
        _serving_pod(
            victim, "s", 0, _series(forged | {"pod": ""}, eval_loss=0.5, eval_step=10, step=12)
        ),
        # The attacker's own sweep's trial, in its own namespace.
        _serving_pod(attacker, "x", 0, lie),
        # A sweep named like the victim's in the attacker's namespace: same pod name s-t0000.
        _serving_pod(attacker, "s", 0, lie),
    ]
    # A pod in the victim's namespace labelled as the victim's next trial, not named so.
    impostor = _serving_pod(victim, "s", 1, lie)
    impostor["metadata"]["name"] = "impostor"
    pods.append(impostor)
    for pod in pods:
        cluster.create(pod)
    manifests = render(combination_values(frozenset({"scrapeConfig"}), "cluster"), namespace)
    config_map = one(manifests, "ConfigMap", "kubetune-scrape-config")
    job = yaml.safe_load(config_map["data"]["kubetune-scrape-config.yaml"])["scrape_configs"][0]
    assert job["honor_labels"] is False
    discovery = PodDiscovery(cluster, namespaces=[victim, attacker]).start()
    del job["kubernetes_sd_configs"]
    job["http_sd_configs"] = [{"url": discovery.url, "refresh_interval": "1s"}]
    prometheus = ClusterPrometheus(tmp_path_factory.mktemp("forged"), extra_scrape_configs=[job])
    try:
        for pod in pods:
            cluster.wait_for_pod_phase(
                pod["metadata"]["namespace"], pod["metadata"]["name"], "Running"
            )
        with prometheus:
            prometheus.wait_for('count(up{job="kubetune-trials"} == 1) == 4', timeout=60)
            prometheus.wait_for("count(kubetune_trial_eval_loss) == 7", timeout=30)
            stored = prometheus.query("kubetune_trial_eval_loss")
            found = asyncio.run(_collect(prometheus.url, victim))
    finally:
        discovery.stop()
        cluster.delete("namespaces", attacker, namespace="")
    # Every forged series was scraped, under the forger's own namespace and pod: what it
    # claimed is kept only as exported_*.
    claimed = [s["metric"] for s in stored if s["metric"].get("exported_namespace") == victim]
    assert {(m["namespace"], m["pod"]) for m in claimed} == {
        (victim, "s-t0000"),
        (attacker, "x-t0000"),
        (attacker, "s-t0000"),
        (victim, "impostor"),
    }
    assert set(found) == {"s-t0000"}, found
    reading = found["s-t0000"]
    assert (reading.value("eval_loss"), reading.eval_step, reading.step) == (0.5, 10, 12)
    assert not reading.done


async def _collect(url: str, namespace: str) -> dict[str, TrialReading]:
    source = PrometheusSource(url, metrics=["eval_loss"])
    try:
        trials = [TrialTarget("s-t0000"), TrialTarget("s-t0001")]
        return await source.collect(namespace, "s", trials)
    finally:
        await source.aclose()
