"""The chart's ValidatingAdmissionPolicy: its CEL, as rendered by Helm, run by a real CEL engine.

A sweep's creator must be able to create its pods and get every Secret it references; the
`authorizer` is a table of grants (tests/chart/cel_admission.py).
"""

from typing import Any

import pytest

from tests.chart.cel_admission import Grant, GrantTable, Verdict, admission_request, evaluate
from tests.chart.rendering import by_kind, one, render

NS = "team"
OPERATOR = "system:serviceaccount:kubetune:kubetune"


def _policy() -> dict[str, Any]:
    return one(render(), "ValidatingAdmissionPolicy")


POLICY = _policy()


def _sweep(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.dev/v1alpha1",
        "kind": "HyperparameterSweep",
        "metadata": {"name": "s", "namespace": NS},
        "spec": spec,
    }


def _secret_env(name: str) -> dict[str, Any]:
    return {"name": f"E_{name}", "valueFrom": {"secretKeyRef": {"name": name, "key": "k"}}}


TRAINER = _sweep({"trainer": {"model": "tiny", "env": [_secret_env("hf")]}})
TEMPLATE = _sweep(
    {
        "template": {
            "spec": {
                "initContainers": [{"name": "fetch", "image": "b", "env": [_secret_env("s3")]}],
                "containers": [
                    {
                        "name": "main",
                        "image": "m",
                        "env": [{"name": "PLAIN", "value": "1"}, _secret_env("hf")],
                        "envFrom": [
                            {"configMapRef": {"name": "cfg"}},
                            {"secretRef": {"name": "db"}},
                        ],
                    }
                ],
                "volumes": [
                    {"name": "tmp", "emptyDir": {}},
                    {"name": "creds", "secret": {"secretName": "gcs"}},
                    {
                        "name": "bundle",
                        "projected": {
                            "sources": [
                                {"configMap": {"name": "cfg"}},
                                {"secret": {"name": "tls"}},
                            ]
                        },
                    },
                ],
            }
        }
    }
)
ALL_SECRETS = ("s3", "hf", "db", "gcs", "tls")


def _table(user: str, *secrets: str, pods: bool = True, namespace: str = NS) -> GrantTable:
    grants = {Grant(user, "get", "secrets", namespace, s) for s in secrets}
    if pods:
        grants.add(Grant(user, "create", "pods", namespace))
    return GrantTable(grants)


def _create(user: str, sweep: dict[str, Any], table: GrantTable) -> Verdict:
    return evaluate(POLICY, admission_request("CREATE", user, NS, sweep), table)


def test_creator_who_could_run_the_pods_is_admitted() -> None:
    table = _table("alice", "hf")
    verdict = _create("alice", TRAINER, table)
    assert verdict.applies and verdict.admitted, verdict.refusals
    # The checks asked are the user's, in the request's namespace, for the named Secret.
    assert ("alice", "create", "", "pods", NS, "") in table.asked
    assert ("alice", "get", "", "secrets", NS, "hf") in table.asked
    assert _create("alice", TEMPLATE, _table("alice", *ALL_SECRETS)).admitted


def test_creator_without_pod_create_is_refused() -> None:
    verdict = _create("bob", TRAINER, _table("bob", "hf", pods=False))
    assert verdict.refusals == [
        "creating a HyperparameterSweep in team needs permission to create pods there: "
        "the operator creates its trial pods for you"
    ]


def test_a_secret_the_creator_cannot_read_is_named() -> None:
    verdict = _create("carol", TRAINER, _table("carol"))
    assert verdict.refusals == [
        "spec.trainer.env: valueFrom.secretKeyRef names Secrets you cannot get: hf"
    ]


def test_every_way_a_template_references_a_secret_is_checked() -> None:
    verdict = _create("dave", TEMPLATE, _table("dave", "hf"))
    assert verdict.refusals == [
        "spec.template: env valueFrom.secretKeyRef names Secrets you cannot get: s3",
        "spec.template: envFrom secretRef names Secrets you cannot get: db",
        "spec.template.spec.volumes: these volumes mount Secrets you cannot get: creds, bundle",
    ]
    for readable in ALL_SECRETS:
        others = [s for s in ALL_SECRETS if s != readable]
        refused = _create("dave", TEMPLATE, _table("dave", *others)).refusals
        assert len(refused) == 1, (readable, refused)


def test_secrets_mounted_through_trainer_volumes_are_checked() -> None:
    volumes = [
        {"name": "results", "persistentVolumeClaim": {"claimName": "r"}},
        {"name": "creds", "secret": {"secretName": "gcs"}},
        {"name": "bundle", "projected": {"sources": [{"secret": {"name": "tls"}}]}},
    ]
    sweep = _sweep({"trainer": {"model": "tiny", "volumes": volumes}})
    assert _create("gina", sweep, _table("gina", "gcs")).refusals == [
        "spec.trainer.volumes: these volumes mount Secrets you cannot get: bundle"
    ]
    assert _create("gina", sweep, _table("gina", "gcs", "tls")).admitted


def test_grants_in_another_namespace_do_not_count() -> None:
    table = _table("erin", "hf", namespace="elsewhere")
    verdict = _create("erin", TRAINER, table)
    assert len(verdict.refusals) == 2
    table.grants |= _table("erin", "hf").grants
    assert _create("erin", TRAINER, table).admitted


def test_sweep_without_secrets_needs_only_pod_create() -> None:
    plain = _sweep({"template": {"spec": {"containers": [{"name": "m", "image": "i"}]}}})
    assert _create("frank", plain, _table("frank")).admitted
    assert not _create("frank", plain, _table("frank", pods=False)).admitted


def test_writes_that_leave_the_spec_alone_are_not_checked() -> None:
    # The operator adds its finalizer and annotations; it may read no Secret at all.
    old = TEMPLATE
    new = {**TEMPLATE, "metadata": {**TEMPLATE["metadata"], "finalizers": ["kubetune.dev/cleanup"]}}
    table = GrantTable()
    verdict = evaluate(POLICY, admission_request("UPDATE", OPERATOR, NS, new, old), table)
    assert not verdict.applies and table.asked == []
    # An edit of the spec is checked against whoever makes it.
    edited = _sweep({**TEMPLATE["spec"], "suspend": True})
    verdict = evaluate(
        POLICY, admission_request("UPDATE", "mallory", NS, edited, old), GrantTable()
    )
    assert verdict.applies and len(verdict.refusals) == 4


@pytest.mark.parametrize("enabled", [True, False])
def test_policy_and_binding_follow_the_flag(enabled: bool) -> None:
    manifests = render({"admissionPolicy": {"enabled": enabled}})
    policies = by_kind(manifests, "ValidatingAdmissionPolicy")
    bindings = by_kind(manifests, "ValidatingAdmissionPolicyBinding")
    assert len(policies) == len(bindings) == int(enabled)
    if enabled:
        (policy,), (binding,) = policies, bindings
        assert binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert binding["spec"]["validationActions"] == ["Deny"]
        assert policy["spec"]["failurePolicy"] == "Fail"
        rules = policy["spec"]["matchConstraints"]["resourceRules"]
        assert rules == [
            {
                "apiGroups": ["kubetune.dev"],
                "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE"],
                "resources": ["hyperparametersweeps"],
            }
        ]


def test_namespaced_install_binds_only_the_watched_namespaces() -> None:
    binding = one(
        render({"watchNamespaces": ["team-a", "team-b"]}), "ValidatingAdmissionPolicyBinding"
    )
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchExpressions": [
            {
                "key": "kubernetes.io/metadata.name",
                "operator": "In",
                "values": ["team-a", "team-b"],
            }
        ]
    }


def _job_sweep() -> dict[str, Any]:
    """TEMPLATE's pod template as the pod template of a batch/v1 Job (spec.workload)."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": TEMPLATE["spec"]["template"]},
    }
    return _sweep({"workload": {"object": job}})


def test_a_job_workload_needs_job_create_and_every_secret_of_its_pod_template() -> None:
    sweep = _job_sweep()
    table = _table("erin", *ALL_SECRETS)
    table.grants.add(Grant("erin", "create", "jobs", NS, group="batch"))
    assert _create("erin", sweep, table).admitted
    where = "spec.workload.object.spec.template"
    assert _create("erin", sweep, _table("erin", *ALL_SECRETS)).refusals == [
        f"creating a HyperparameterSweep with spec.workload in {NS} needs permission to create "
        "jobs.batch there: the operator creates its trial workloads for you"
    ]
    table = _table("erin", "hf")
    table.grants.add(Grant("erin", "create", "jobs", NS, group="batch"))
    assert _create("erin", sweep, table).refusals == [
        f"{where}: env valueFrom.secretKeyRef names Secrets you cannot get: s3",
        f"{where}: envFrom secretRef names Secrets you cannot get: db",
        f"{where}.spec.volumes: these volumes mount Secrets you cannot get: creds, bundle",
    ]


def test_a_pytorchjob_workload_needs_its_create_and_every_secret_of_every_replica() -> None:
    master = {"spec": {"containers": [{"name": "m", "image": "b", "env": [_secret_env("hf")]}]}}
    worker = {
        "spec": {
            "containers": [{"name": "w", "image": "b", "envFrom": [{"secretRef": {"name": "db"}}]}],
            "volumes": [{"name": "creds", "secret": {"secretName": "gcs"}}],
        }
    }
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "template": master},
                "Worker": {"replicas": 2, "template": worker},
            }
        },
    }
    sweep = _sweep({"workload": {"object": job}})
    table = _table("erin", "hf", "db", "gcs")
    table.grants.add(Grant("erin", "create", "pytorchjobs", NS, group="kubeflow.org"))
    assert _create("erin", sweep, table).admitted
    # A Job grant is no PyTorchJob grant.
    table = _table("erin", "hf", "db", "gcs")
    table.grants.add(Grant("erin", "create", "jobs", NS, group="batch"))
    assert _create("erin", sweep, table).refusals == [
        f"creating a HyperparameterSweep with spec.workload in {NS} needs permission to create "
        "pytorchjobs.kubeflow.org there: the operator creates its trial workloads for you"
    ]
    # The worker's Secrets count as much as the master's.
    table = _table("erin", "hf")
    table.grants.add(Grant("erin", "create", "pytorchjobs", NS, group="kubeflow.org"))
    assert _create("erin", sweep, table).refusals == [
        "spec.workload.object: envFrom secretRef names Secrets you cannot get: db",
        "spec.workload.object.spec.volumes: these volumes mount Secrets you cannot get: creds",
    ]


def test_a_jobset_workload_checks_every_replicated_job() -> None:
    clean = {"spec": {"containers": [{"name": "a", "image": "b"}]}}
    leaky = {"spec": {"containers": [{"name": "a", "image": "b", "env": [_secret_env("s3")]}]}}
    jobset = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "spec": {
            "replicatedJobs": [
                {"name": "d", "template": {"spec": {"template": clean}}},
                {"name": "w", "template": {"spec": {"template": leaky}}},
            ]
        },
    }
    sweep = _sweep({"workload": {"object": jobset}})
    table = _table("erin")
    table.grants.add(Grant("erin", "create", "jobsets", NS, group="jobset.x-k8s.io"))
    assert _create("erin", sweep, table).refusals == [
        "spec.workload.object: env valueFrom.secretKeyRef names Secrets you cannot get: s3"
    ]
    table.grants.add(Grant("erin", "get", "secrets", NS, "s3"))
    assert _create("erin", sweep, table).admitted


def _run_sweep() -> dict[str, Any]:
    """A sweep of a kind kubetune does not know (spec.workload with podTemplates)."""
    run = {
        "apiVersion": "example.dev/v1",
        "kind": "TrainingRun",
        "spec": {"leader": {"template": {"spec": {"containers": [{"name": "a", "image": "b"}]}}}},
    }
    return _sweep(
        {
            "workload": {
                "object": run,
                "podTemplates": ["spec.leader.template"],
                "successCondition": {"type": "Done"},
                "failureCondition": {"field": "status.phase", "equals": "Failed"},
            }
        }
    )


def test_a_custom_kind_needs_its_listing_in_the_chart_and_its_create() -> None:
    listed = one(
        render(
            {
                "rbac": {
                    "workloadKinds": [
                        {
                            "apiGroup": "example.dev",
                            "resource": "trainingruns",
                            "kind": "TrainingRun",
                        }
                    ]
                }
            }
        ),
        "ValidatingAdmissionPolicy",
    )
    sweep = _run_sweep()
    table = _table("erin")
    table.grants.add(Grant("erin", "create", "trainingruns", NS, group="example.dev"))
    verdict = evaluate(listed, admission_request("CREATE", "erin", NS, sweep), table)
    assert verdict.admitted, verdict.refusals
    # A Job grant is no TrainingRun grant (before, any other kind was checked as a Job).
    table = _table("erin")
    table.grants.add(Grant("erin", "create", "jobs", NS, group="batch"))
    verdict = evaluate(listed, admission_request("CREATE", "erin", NS, sweep), table)
    assert verdict.refusals == [
        f"creating a HyperparameterSweep with spec.workload in {NS} needs permission to create "
        "trainingruns.example.dev there: the operator creates its trial workloads for you"
    ]
    # The default chart lists no such kind: the sweep is refused whatever its creator may do.
    table.grants.add(Grant("erin", "create", "trainingruns", NS, group="example.dev"))
    assert _create("erin", sweep, table).refusals == [
        "spec.workload.object: kubetune here may not create a TrainingRun of example.dev/v1: "
        "its cluster admin lists the kinds it may create (the chart's rbac.workloadKinds)"
    ]


def test_a_trainjob_workload_needs_its_create_and_every_secret_it_names() -> None:
    """A TrainJob's Secrets sit in spec.trainer.env, the initializers' env and secretRef, and
    its podTemplateOverrides (containers' env, volumes); its runtime's are the admin's."""
    job = {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "spec": {
            "runtimeRef": {"name": "torch-distributed"},
            "trainer": {"numNodes": 2, "env": [{"name": "P", "value": "1"}, _secret_env("hf")]},
            "initializer": {
                "dataset": {"secretRef": {"name": "s3"}},
                "model": {"env": [_secret_env("db")]},
            },
            "podTemplateOverrides": [
                {"targetJobs": [{"name": "node"}], "metadata": {"labels": {"a": "b"}}},
                {
                    "targetJobs": [{"name": "node"}],
                    "spec": {
                        "containers": [{"name": "sidecar", "env": [_secret_env("tls")]}],
                        "volumes": [{"name": "creds", "secret": {"secretName": "gcs"}}],
                    },
                },
            ],
        },
    }
    sweep = _sweep({"workload": {"object": job}})
    table = _table("erin", *ALL_SECRETS)
    table.grants.add(Grant("erin", "create", "trainjobs", NS, group="trainer.kubeflow.org"))
    assert _create("erin", sweep, table).admitted
    # A PyTorchJob grant is no TrainJob grant.
    table = _table("erin", *ALL_SECRETS)
    table.grants.add(Grant("erin", "create", "pytorchjobs", NS, group="kubeflow.org"))
    assert _create("erin", sweep, table).refusals == [
        f"creating a HyperparameterSweep with spec.workload in {NS} needs permission to create "
        "trainjobs.trainer.kubeflow.org there: the operator creates its trial workloads for you"
    ]
    table = _table("erin")
    table.grants.add(Grant("erin", "create", "trainjobs", NS, group="trainer.kubeflow.org"))
    assert _create("erin", sweep, table).refusals == [
        "spec.workload.object: env valueFrom.secretKeyRef names Secrets you cannot get: tls",
        "spec.workload.object.spec.volumes: these volumes mount Secrets you cannot get: creds",
        "spec.workload.object.spec: the TrainJob's trainer and initializer env and secretRef "
        "name Secrets you cannot get: hf, db, s3",
    ]
