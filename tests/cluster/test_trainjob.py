"""The TrainJob stand-in's JobSet (tests/cluster/trainjob.py), as upstream's jobset Builder
and podTemplateOverrides merge make it: numNodes on the trainer job, trainer.* on container
`node`, overrides in order on the jobs they target only."""

from typing import Any

from .trainjob import build_jobset

ANCESTOR = "trainer.kubeflow.org/trainjob-ancestor-step"


def _rjob(name: str, ancestor: str) -> dict[str, Any]:
    return {
        "name": name,
        "template": {
            "metadata": {"labels": {ANCESTOR: ancestor}},
            "spec": {
                "template": {
                    "metadata": {"labels": {"from": "runtime"}},
                    "spec": {
                        "containers": [
                            {"name": name, "image": "r:1", "env": [{"name": "A", "value": "r"}]}
                        ]
                    },
                }
            },
        },
    }


RUNTIME = {
    "metadata": {"name": "rt"},
    "spec": {
        "mlPolicy": {"numNodes": 3},
        "template": {
            "metadata": {"labels": {"rt": "yes"}},
            "spec": {
                "replicatedJobs": [
                    _rjob("dataset-initializer", "dataset-initializer"),
                    _rjob("node", "trainer"),
                ]
            },
        },
    },
}


def _job(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "trainer.kubeflow.org/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": "tj", "namespace": "ns", "uid": "u1"},
        "spec": {"runtimeRef": {"name": "rt"}, **spec},
    }


def test_the_trainer_job_gets_num_nodes_and_the_trainer_fields() -> None:
    jobset = build_jobset(
        _job(
            trainer={"numNodes": 2, "image": "t:2", "env": [{"name": "A", "value": "t"}]},
            labels={"x": "1"},
            suspend=True,
        ),
        RUNTIME,
    )
    assert jobset["metadata"]["name"] == "tj"
    assert jobset["metadata"]["labels"] == {"rt": "yes", "x": "1"}
    assert jobset["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert jobset["spec"]["suspend"] is True
    init, node = jobset["spec"]["replicatedJobs"]
    assert (node["replicas"], node["template"]["spec"]["parallelism"]) == (1, 2)
    assert node["template"]["spec"]["completions"] == 2
    assert "parallelism" not in init["template"]["spec"]
    (container,) = node["template"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "t:2" and container["env"] == [{"name": "A", "value": "t"}]
    (other,) = init["template"]["spec"]["template"]["spec"]["containers"]
    assert other["image"] == "r:1"  # only container `node` gets trainer.*
    # Without trainer.numNodes the runtime's mlPolicy decides.
    node = build_jobset(_job(), RUNTIME)["spec"]["replicatedJobs"][1]
    assert node["template"]["spec"]["parallelism"] == 3


def test_overrides_apply_in_order_to_the_jobs_they_target() -> None:
    overrides = [
        {
            "targetJobs": [{"name": "node"}],
            "metadata": {"labels": {"k": "first", "a": "1"}},
            "spec": {"nodeSelector": {"gpu": "h100"}, "volumes": [{"name": "v", "emptyDir": {}}]},
        },
        {"targetJobs": [{"name": "node"}], "metadata": {"labels": {"k": "second"}}},
    ]
    init, node = build_jobset(_job(podTemplateOverrides=overrides), RUNTIME)["spec"][
        "replicatedJobs"
    ]
    pod = node["template"]["spec"]["template"]
    assert pod["metadata"]["labels"] == {"from": "runtime", "k": "second", "a": "1"}
    assert pod["spec"]["nodeSelector"] == {"gpu": "h100"}
    assert pod["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]
    untouched = init["template"]["spec"]["template"]
    assert untouched["metadata"]["labels"] == {"from": "runtime"}
    assert "nodeSelector" not in untouched["spec"]
