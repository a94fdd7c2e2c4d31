"""The Helm chart rendered by the real Helm engine: lint, every toggle combination, schemas, contracts."""

import json
import subprocess
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from kubetune import API_GROUP, PLURAL, conventions
from kubetune.builders.pod import build_trial_pod
from kubetune.policy.pod_policy import PodPolicy, load_pod_policy
from kubetune.spec import effective_spec, parse_sweep
from tests.chart.prometheus import PROMTOOL
from tests.chart.rendering import (
    CHART,
    RELEASE,
    RELEASE_NAMESPACE,
    REPO,
    TOGGLES,
    by_kind,
    chart_crds,
    combination_id,
    combination_values,
    combinations,
    notes,
    one,
    render,
)
from tests.chart.schemas import MONITORING_GROUP, validate_builtin, validate_monitoring
from tests.cluster.pod_discovery import sanitize
from tests.cluster.prometheus import trial_pods_job

ALL_ON: dict[str, Any] = combination_values(frozenset(TOGGLES), "cluster")
COMBINATIONS = list(combinations())

# The objects each switch adds.
TOGGLED_KINDS = {
    "serviceMonitor": ("ServiceMonitor", None),
    "podMonitor": ("PodMonitor", None),
    "prometheusRule": ("PrometheusRule", None),
    "scrapeConfig": ("ConfigMap", "kubetune-scrape-config"),
    "dashboards": ("ConfigMap", "kubetune-dashboard-sweep"),
    "networkPolicy": ("NetworkPolicy", None),
    "admissionPolicy": ("ValidatingAdmissionPolicyBinding", None),
}


def _rules(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = manifest["rules"]
    return rules


def _names(manifests: list[dict[str, Any]], kind: str) -> set[str]:
    return {m["metadata"]["name"] for m in by_kind(manifests, kind)}


def test_lint_is_clean_with_defaults_and_everything_on() -> None:
    for values in (None, ALL_ON, combination_values(frozenset(TOGGLES), "namespaced")):
        report = helm.lint(CHART, values, strict=True, kube_version="v1.32.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize(
    ("enabled", "scope"), COMBINATIONS, ids=[combination_id(*c) for c in COMBINATIONS]
)
def test_every_toggle_combination_renders_valid_objects(
    enabled: frozenset[str], scope: str
) -> None:
    manifests = render(combination_values(enabled, scope))
    for manifest in manifests:
        if manifest["apiVersion"] == MONITORING_GROUP:
            validate_monitoring(manifest)
        else:
            validate_builtin(manifest)
    for toggle, (kind, name) in TOGGLED_KINDS.items():
        present = [m for m in by_kind(manifests, kind) if name in (None, m["metadata"]["name"])]
        assert bool(present) == (toggle in enabled), f"{toggle}: {kind} {name}"
    keys = [(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests]
    assert len(keys) == len(set(keys)), "two objects share kind, namespace and name"


def test_defaults_render_the_operator_only() -> None:
    kinds = sorted(m["kind"] for m in render())
    assert kinds == sorted(
        [
            "ClusterRole",
            "ClusterRole",
            "ClusterRoleBinding",
            "ClusterRoleBinding",
            "Deployment",
            "Pod",  # the helm test hook
            "Role",  # the leader-election Lease, in the release namespace
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
    )


def test_chart_crd_is_the_generated_crd() -> None:
    generated = REPO / "crds" / f"{PLURAL}.{API_GROUP}.yaml"
    copy = CHART / "crds" / generated.name
    assert copy.read_bytes() == generated.read_bytes(), (
        f"{copy} is stale: cp {generated.relative_to(REPO)} {copy.relative_to(REPO)}"
    )
    assert [crd["metadata"]["name"] for crd in chart_crds()] == [f"{PLURAL}.{API_GROUP}"]
    validate_builtin(chart_crds()[0])


def _container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    container: dict[str, Any] = pod["containers"][0]
    return container


def test_operator_deployment_contract() -> None:
    manifests = render({"image": {"tag": "9.9.9"}, "watchNamespaces": ["team-a", "team-b"]})
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = _container(manifests)
    assert container["command"] == ["python", "-m", "kubetune.operator"]
    assert container["image"] == "ghcr.io/kubetune/kubetune-operator:9.9.9"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[conventions.ENV_WATCH_NAMESPACES] == "team-a,team-b"
    lease_namespace = next(
        e for e in container["env"] if e["name"] == conventions.ENV_OPERATOR_NAMESPACE
    )
    assert lease_namespace["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env[conventions.ENV_DEFAULT_TRAINER_IMAGE] == "ghcr.io/kubetune/kubetune-trainer:0.1.0"
    assert env[conventions.ENV_DEFAULT_PROMETHEUS_URL].startswith("http://")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "metrics": conventions.OPERATOR_METRICS_PORT,
        "health": conventions.OPERATOR_HEALTH_PORT,
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_pod_policy_reaches_the_operator_as_it_reads_it() -> None:
    env = _env(_container(render()))
    assert load_pod_policy(env[conventions.ENV_POD_POLICY]) == PodPolicy()
    policy = {"level": "baseline", "allowedServiceAccounts": ["trainer", "uploader"]}
    env = _env(_container(render({"podPolicy": policy})))
    assert load_pod_policy(env[conventions.ENV_POD_POLICY]) == PodPolicy(
        level="baseline", allowed_service_accounts=("trainer", "uploader")
    )


def test_bind_address_is_every_interface_or_the_pod_ip() -> None:
    env = _env(_container(render()))
    assert env[conventions.ENV_BIND_ADDRESS] == conventions.DEFAULT_BIND_ADDRESS
    env = _env(_container(render({"operator": {"bindAddress": "podIP"}})))
    assert env[conventions.ENV_BIND_ADDRESS] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_network_policy_admits_only_the_metrics_and_health_ports() -> None:
    assert not by_kind(render(), "NetworkPolicy"), "off by default"
    peers = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    manifests = render({"networkPolicy": {"enabled": True, "from": peers}})
    policy = one(manifests, "NetworkPolicy")
    pod = one(manifests, "Deployment")["spec"]["template"]
    assert _matches(policy["spec"]["podSelector"], pod["metadata"]["labels"])
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    container_ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
    assert {p["port"] for p in rule["ports"]} == container_ports == {"metrics", "health"}
    assert rule["from"] == peers


def test_image_tag_defaults_to_app_version_and_defaults_are_settable() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    container = _container(
        render({"defaults": {"trainerImage": "reg/t:2", "prometheusUrl": "http://p:9090"}})
    )
    assert container["image"].endswith(f":{chart['appVersion']}")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[conventions.ENV_DEFAULT_TRAINER_IMAGE] == "reg/t:2"
    assert env[conventions.ENV_DEFAULT_PROMETHEUS_URL] == "http://p:9090"
    assert env[conventions.ENV_WATCH_NAMESPACES] == ""


def test_operator_runs_hardened() -> None:
    manifests = render()
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    context = _container(manifests)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert _container(manifests)["resources"]["limits"]["memory"]


def _all_rules(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for m in manifests if m["kind"] in ("Role", "ClusterRole") for r in _rules(m)]


def test_workload_kinds_grant_only_the_listed_kinds() -> None:
    values = combination_values(frozenset(), "cluster")
    values["rbac"] = {"workloadKinds": [{"apiGroup": "kubeflow.org", "resource": "pytorchjobs"}]}
    granted = {
        (g, r)
        for rule in _all_rules(render(values))
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert ("kubeflow.org", "pytorchjobs") in granted
    assert ("jobset.x-k8s.io", "jobsets") not in granted
    values["rbac"] = {"workloadKinds": []}
    granted = {g for rule in _all_rules(render(values)) for g in rule["apiGroups"]}
    assert not {"kubeflow.org", "jobset.x-k8s.io"} & granted


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_a_listed_custom_kind_is_granted_as_the_known_ones(scope: str) -> None:
    values = combination_values(frozenset(), scope)
    custom = {"apiGroup": "example.dev", "resource": "trainingruns", "kind": "TrainingRun"}
    values["rbac"] = {"workloadKinds": [custom]}
    verbs = [
        sorted(rule["verbs"])
        for rule in _all_rules(render(values))
        if rule["apiGroups"] == ["example.dev"] and rule["resources"] == ["trainingruns"]
    ]
    assert verbs and all(v == ["create", "delete", "get", "list", "watch"] for v in verbs)


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_rbac_is_least_privilege(scope: str) -> None:
    values = combination_values(frozenset(), scope)
    manifests = render(values)
    rules = _all_rules(manifests)
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert "secrets" not in rule["resources"], rule
        assert "*" not in rule["apiGroups"], rule
    granted = {(g, r) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    expected = {
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        (API_GROUP, PLURAL),
        (API_GROUP, f"{PLURAL}/status"),
        (API_GROUP, f"{PLURAL}/finalizers"),
        ("", "pods"),
        ("", "pods/log"),
        ("batch", "jobs"),
        ("", "services"),
        ("jobset.x-k8s.io", "jobsets"),
        ("kubeflow.org", "pytorchjobs"),
        ("trainer.kubeflow.org", "trainjobs"),
        ("", "events"),
        ("coordination.k8s.io", "leases"),
    }
    assert granted == expected
    leader = one(manifests, "Role", f"{RELEASE}-leader")
    assert leader["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert [(r.get("resourceNames"), sorted(r["verbs"])) for r in leader["rules"]] == [
        (["kubetune-operator"], ["get", "update"]),
        (None, ["create"]),
    ]
    verbs = {
        (g, r): sorted(rule["verbs"])
        for rule in rules
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert verbs[("", "pods")] == ["create", "delete", "get", "list", "watch"]
    assert verbs[("", "pods/log")] == ["get"]  # spec.metrics.logs
    assert verbs[("", "services")] == ["create"]  # trainer.nodes' headless Service
    assert verbs[("batch", "jobs")] == ["create", "delete", "get", "list", "watch"]
    assert verbs[("kubeflow.org", "pytorchjobs")] == ["create", "delete", "get", "list", "watch"]
    assert verbs[("trainer.kubeflow.org", "trainjobs")] == verbs[("kubeflow.org", "pytorchjobs")]
    assert verbs[("", "events")] == ["create"]
    assert verbs[(API_GROUP, PLURAL)] == ["get", "list", "patch", "watch"]
    assert verbs[(API_GROUP, f"{PLURAL}/status")] == ["get", "patch"]
    # blockOwnerDeletion on the trial pods' owner reference (OpenShift) needs exactly this.
    assert verbs[(API_GROUP, f"{PLURAL}/finalizers")] == ["update"]
    cluster_rules = [r for m in by_kind(manifests, "ClusterRole") for r in _rules(m)]
    crd_rule = next(r for r in cluster_rules if "customresourcedefinitions" in r["resources"])
    assert sorted(crd_rule["verbs"]) == ["list", "watch"]
    if scope == "namespaced":
        # Nothing about sweeps or pods is granted cluster-wide.
        assert {r for rule in cluster_rules for r in rule["resources"]} <= {
            "customresourcedefinitions"
        }
        roles = [m for m in by_kind(manifests, "Role") if m is not leader]
        assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
        bindings = by_kind(manifests, "RoleBinding")
        assert all(
            b["subjects"][0]["namespace"] == RELEASE_NAMESPACE and b["roleRef"]["kind"] == "Role"
            for b in bindings
        )
    else:
        # Only the lease is granted by namespace: sweeps and pods cluster-wide.
        assert by_kind(manifests, "Role") == [leader]
        assert [b["metadata"]["name"] for b in by_kind(manifests, "RoleBinding")] == [
            f"{RELEASE}-leader"
        ]


def test_bindings_name_the_service_account_and_existing_roles() -> None:
    for scope in ("cluster", "namespaced"):
        manifests = render(combination_values(frozenset(), scope))
        account = one(manifests, "ServiceAccount")["metadata"]["name"]
        pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account
        roles = {(m["kind"], m["metadata"]["name"]) for m in manifests if "rules" in m}
        for binding in by_kind(manifests, "RoleBinding") + by_kind(manifests, "ClusterRoleBinding"):
            assert binding["subjects"] == [
                {"kind": "ServiceAccount", "name": account, "namespace": RELEASE_NAMESPACE}
            ]
            assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) in roles


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        if operator == "Exists" and key not in labels:
            return False
        if operator == "In" and labels.get(key) not in expression["values"]:
            return False
    return True


def _trial_pod() -> dict[str, Any]:
    sweep = parse_sweep(
        {
            "apiVersion": f"{API_GROUP}/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "demo", "namespace": "team-a"},
            "spec": {"trainer": {"image": "reg/t:1", "model": "tiny"}},
        }
    )
    return build_trial_pod(sweep, effective_spec(sweep.spec), 0, {"learning_rate": 1e-4})


def test_pod_monitor_selects_the_trial_pods_the_operator_builds() -> None:
    pod = _trial_pod()
    for scope in ("cluster", "namespaced"):
        monitor = one(render(combination_values(frozenset({"podMonitor"}), scope)), "PodMonitor")
        assert _matches(monitor["spec"]["selector"], pod["metadata"]["labels"])
        port_names = {p.get("name") for c in pod["spec"]["containers"] for p in c.get("ports", [])}
        assert monitor["spec"]["podMetricsEndpoints"][0]["port"] in port_names
        selector = monitor["spec"]["namespaceSelector"]
        assert selector == (
            {"any": True} if scope == "cluster" else {"matchNames": ["team-a", "team-b"]}
        )
    # The chart's own pods must not look like trial pods.
    operator_labels = one(render(), "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not _matches(monitor["spec"]["selector"], operator_labels)


def test_service_monitor_selects_the_operator_service_and_port() -> None:
    manifests = render(ALL_ON)
    service = one(manifests, "Service")
    deployment = one(manifests, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _matches({"matchLabels": service["spec"]["selector"]}, pod_labels)
    monitor = one(manifests, "ServiceMonitor")
    assert _matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [RELEASE_NAMESPACE]}


def test_monitors_take_additional_labels() -> None:
    extra = {"release": "kube-prometheus-stack"}
    values = combination_values(frozenset(TOGGLES), "cluster")
    for key in ("serviceMonitor", "podMonitor", "prometheusRule"):
        values["metrics"][key]["additionalLabels"] = extra
    for kind in ("ServiceMonitor", "PodMonitor", "PrometheusRule"):
        assert one(render(values), kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_prometheus_rules_pass_promtool_and_take_thresholds(tmp_path: Path) -> None:
    values = combination_values(frozenset({"prometheusRule"}), "cluster")
    values["metrics"]["prometheusRule"].update(failedTrialRatio=0.25, noMetricsFor="7m")
    rule = one(render(values), "PrometheusRule")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    assert set(alerts) == {
        "KubetuneSweepFailed",
        "KubetuneTrialFailureRatioHigh",
        "KubetuneTrialMetricsMissing",
        "KubetuneOperatorDown",
    }
    assert alerts["KubetuneTrialFailureRatioHigh"]["expr"].rstrip().endswith("> 0.25")
    assert alerts["KubetuneTrialMetricsMissing"]["for"] == "7m"
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_fallback_scrape_config_passes_promtool(tmp_path: Path) -> None:
    for scope in ("cluster", "namespaced"):
        manifests = render(combination_values(frozenset({"scrapeConfig"}), scope))
        config_map = one(manifests, "ConfigMap", "kubetune-scrape-config")
        snippet = yaml.safe_load(config_map["data"]["kubetune-scrape-config.yaml"])
        jobs = {job["job_name"]: job for job in snippet["scrape_configs"]}
        # Named like a ServiceMonitor names the job (the Service), so the alerts match it.
        assert set(jobs) == {"kubetune-trials", one(manifests, "Service")["metadata"]["name"]}
        namespaces = {"cluster": None, "namespaced": {"names": ["team-a", "team-b"]}}[scope]
        assert jobs["kubetune-trials"]["kubernetes_sd_configs"] == [
            {"role": "pod", **({"namespaces": namespaces} if namespaces else {})}
        ]
        operator_sd = jobs["kubetune"]["kubernetes_sd_configs"]
        assert operator_sd == [{"role": "endpoints", "namespaces": {"names": [RELEASE_NAMESPACE]}}]
        # Debian's Prometheus is built without Kubernetes discovery, so promtool cannot parse
        # kubernetes_sd_configs: check everything else (relabel rules, regexes) with a static
        # target in its place.
        for job in snippet["scrape_configs"]:
            job["static_configs"] = [{"targets": ["127.0.0.1:9400"]}]
            del job["kubernetes_sd_configs"]
        config = tmp_path / f"prometheus-{scope}.yml"
        config.write_text(yaml.safe_dump(snippet))
        checked = subprocess.run(
            [PROMTOOL, "check", "config", "--syntax-only", str(config)],
            capture_output=True,
            text=True,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr


# The labels that say whose series it is, and where each comes from: the pod's metadata.
TRUSTED_LABELS = {
    "namespace": "__meta_kubernetes_namespace",
    "pod": "__meta_kubernetes_pod_name",
    "sweep": "__meta_kubernetes_pod_label_" + sanitize(conventions.LABEL_SWEEP),
    "trial": "__meta_kubernetes_pod_label_" + sanitize(conventions.LABEL_TRIAL),
}


def _copied_labels(rules: list[dict[str, Any]]) -> dict[str, str]:
    """target label -> the one source label a plain replace rule copies into it."""
    copied = {}
    for rule in rules:
        action = rule.get("action", "replace").lower()
        regex, replacement = rule.get("regex", "(.*)"), rule.get("replacement", "$1")
        if action == "replace" and regex == "(.*)" and replacement == "$1":
            (source,) = rule["source_labels"]
            copied[rule["target_label"]] = source
    return copied


def test_trial_series_labels_come_from_pod_metadata_never_the_target() -> None:
    """PodMonitor, fallback job and the tests' Prometheus all take namespace, pod, sweep and
    trial from the pod's own metadata, and none honours the labels a trial pod exposes."""
    for scope in ("cluster", "namespaced"):
        manifests = render(combination_values(frozenset({"podMonitor", "scrapeConfig"}), scope))
        (endpoint,) = one(manifests, "PodMonitor")["spec"]["podMetricsEndpoints"]
        assert endpoint["honorLabels"] is False
        as_config = [
            {
                "source_labels": r["sourceLabels"],
                "target_label": r["targetLabel"],
                **({"action": r["action"]} if "action" in r else {}),
            }
            for r in endpoint["relabelings"]
        ]
        assert _copied_labels(as_config) == TRUSTED_LABELS
        config_map = one(manifests, "ConfigMap", "kubetune-scrape-config")
        snippet = yaml.safe_load(config_map["data"]["kubetune-scrape-config.yaml"])
        job = snippet["scrape_configs"][0]
        assert job["job_name"] == "kubetune-trials" and job["honor_labels"] is False
        assert _copied_labels(job["relabel_configs"]) == TRUSTED_LABELS
    fixture = trial_pods_job("http://127.0.0.1:1/targets")
    assert fixture["honor_labels"] is False
    assert _copied_labels(fixture["relabel_configs"]) == TRUSTED_LABELS


def test_allowed_prometheus_urls_reach_the_operator() -> None:
    allowed = ["http://thanos.example/tenants/a", "https://prom.example:9443"]
    env = {
        e["name"]: e.get("value")
        for e in _container(render({"prometheus": {"allowedUrls": allowed}}))["env"]
    }
    assert env[conventions.ENV_ALLOWED_PROMETHEUS_URLS] == ",".join(allowed)
    env = {e["name"]: e.get("value") for e in _container(render())["env"]}
    assert env[conventions.ENV_ALLOWED_PROMETHEUS_URLS] == ""


def test_fallback_scrape_config_follows_the_trial_pod_annotations() -> None:
    """The pod job keeps exactly what the operator's builder puts on trial pods."""
    pod = _trial_pod()
    manifests = render(combination_values(frozenset({"scrapeConfig"}), "cluster"))
    config_map = one(manifests, "ConfigMap", "kubetune-scrape-config")
    job = yaml.safe_load(config_map["data"]["kubetune-scrape-config.yaml"])["scrape_configs"][0]
    meta = {
        "__meta_kubernetes_pod_label_app_kubernetes_io_managed_by": pod["metadata"]["labels"][
            conventions.LABEL_MANAGED_BY
        ],
        "__meta_kubernetes_pod_labelpresent_kubetune_dev_sweep": "true",
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape": pod["metadata"]["annotations"][
            "prometheus.io/scrape"
        ],
    }
    keeps = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    for rule in keeps:
        (source,) = rule["source_labels"]
        assert meta[source] == rule["regex"], rule
    port = pod["metadata"]["annotations"]["prometheus.io/port"]
    assert int(port) == conventions.DEFAULT_METRICS_PORT


def test_dashboard_configmaps_for_grafana_sidecar() -> None:
    values = combination_values(frozenset({"dashboards"}), "cluster")
    manifests = render(values)
    maps = [m for m in by_kind(manifests, "ConfigMap") if "dashboard" in m["metadata"]["name"]]
    files = sorted((CHART / "dashboards").glob("*.json"))
    assert len(maps) == len(files) == 2
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert "annotations" not in config_map["metadata"]
        ((key, text),) = config_map["data"].items()
        assert json.loads(text) == json.loads(
            (CHART / "dashboards" / key.removeprefix("kubetune-")).read_text()
        )
    values["grafana"]["dashboards"].update(folder="ML / kubetune", namespace="monitoring")
    for config_map in by_kind(render(values), "ConfigMap"):
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "ML / kubetune"}
        assert config_map["metadata"]["namespace"] == "monitoring"


def test_helm_test_hook_checks_operator_liveness() -> None:
    manifests = render()
    hook = one(manifests, "Pod")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = hook["spec"]["containers"][0]["command"][-1]
    service = one(manifests, "Service")
    health = next(p for p in service["spec"]["ports"] if p["name"] == "health")
    assert health["port"] == conventions.OPERATOR_HEALTH_PORT
    url = f"http://{service['metadata']['name']}.{RELEASE_NAMESPACE}.svc:{health['port']}/healthz"
    assert url in script
    assert hook["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, "additional properties 'replicaCount' not allowed"),
        ({"metrics": {"podMonitor": {"enabeld": True}}}, "'enabeld' not allowed"),
        ({"watchNamespaces": ["team-*"]}, "/watchNamespaces/0"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"metrics": {"prometheusRule": {"noMetricsFor": "ten minutes"}}}, "noMetricsFor"),
        ({"metrics": {"prometheusRule": {"failedTrialRatio": 2}}}, "failedTrialRatio"),
        ({"defaults": {"prometheusUrl": "prometheus:9090"}}, "/defaults/prometheusUrl"),
        ({"podPolicy": {"level": "root"}}, "/podPolicy/level"),
        (
            {"podPolicy": {"allowedServiceAccounts": ["Not_A_Name"]}},
            "/podPolicy/allowedServiceAccounts/0",
        ),
        ({"podPolicy": {"allowServiceAccounts": []}}, "'allowServiceAccounts' not allowed"),
        ({"operator": {"bindAddress": "everywhere"}}, "/operator/bindAddress"),
        ({"networkPolicy": {"enabled": "yes"}}, "/networkPolicy/enabled"),
        ({"defaults": {"prometheusUrl": "http://p:9090/x#"}}, "/defaults/prometheusUrl"),
        ({"prometheus": {"allowedUrls": ["http://u:pw@p:9090"]}}, "/prometheus/allowedUrls/0"),
        ({"prometheus": {"allowedUrls": ["http://p:9090/?x=1"]}}, "/prometheus/allowedUrls/0"),
        ({"prometheus": {"allowedUrls": ["http://a,http://b"]}}, "/prometheus/allowedUrls/0"),
        ({"prometheus": {"allowedUrls": ["p:9090"]}}, "/prometheus/allowedUrls/0"),
        # A custom workload kind grants create on it: never core pods, a wildcard or sweeps.
        (
            {"rbac": {"workloadKinds": [{"apiGroup": "", "resource": "pods"}]}},
            "/rbac/workloadKinds/0/apiGroup",
        ),
        (
            {"rbac": {"workloadKinds": [{"apiGroup": "example.dev", "resource": "*"}]}},
            "/rbac/workloadKinds/0/resource",
        ),
        (
            {"rbac": {"workloadKinds": [{"apiGroup": "kubetune.dev", "resource": "x"}]}},
            "/rbac/workloadKinds/0/apiGroup",
        ),
    ],
)
def test_schema_rejects_bad_values_naming_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=message.replace("*", r"\*")):
        render(values)


def test_notes_tell_how_to_start_a_sweep() -> None:
    text = notes()
    example = REPO / "examples" / "tiny-sweep.yaml"
    assert example.exists()
    assert (
        f"kubectl apply -f https://raw.githubusercontent.com/kubetune/kubetune/v0.1.0/examples/{example.name}"
        in text
    )
    assert yaml.safe_load(example.read_text())["metadata"]["name"] == "tiny-sweep"
    assert "kubectl describe hps tiny-sweep" in text
    assert "kubectl get hps" in text
    assert "WARNING: neither metrics.podMonitor.enabled" in text
    text = notes(combination_values(frozenset({"podMonitor", "dashboards"}), "namespaced"))
    assert "watches these namespaces only: team-a, team-b" in text
    assert "-n team-a" in text
    assert "WARNING" not in text
    assert "kubetune / Sweep" in text


def _value_keys(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys down to where the schema stops listing properties (free-form maps)."""
    keys = []
    for key, value in values.items():
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and value and sub.get("additionalProperties") is False:
            keys += _value_keys(value, sub, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def test_readme_documents_every_value() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    keys = _value_keys(values, schema)
    assert len(keys) > 40
    missing = [key for key in keys if f"| `{key}` |" not in readme]
    assert missing == []


def test_readme_states_the_operator_resources_values_sets() -> None:
    # The defaults column is prose, so the keys test above cannot see a stale figure here.
    resources = yaml.safe_load((CHART / "values.yaml").read_text())["operator"]["resources"]
    readme = (CHART / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `operator.resources` |"))
    requests, limits = resources["requests"], resources["limits"]
    stated = f"requests {requests['cpu']} / {requests['memory']}, limit {limits['memory']}"
    assert f"| {stated} |" in row
