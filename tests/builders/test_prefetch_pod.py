"""The prefetch pod: the trainer block's pod running `prefetch`, labelled as no trial."""

import json
from typing import Any

import pytest

from kubetune import conventions
from kubetune.builders.contract import ATTEMPT_ANNOTATION
from kubetune.builders.pod import build_trial_pod
from kubetune.builders.prefetch import PREFETCH_COMMAND, build_prefetch_pod
from kubetune.builders.security import PolicyRefused
from kubetune.operator.pod_state import view
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep
from kubetune.spec.errors import SpecError
from kubetune.spec.hub import cluster_prefetch


def _sweep(**trainer: Any) -> HyperparameterSweep:
    block = {"image": "trainer:1", "model": "org/m", "cache": {"claimName": "hf"}, **trainer}
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "cached", "namespace": "team"},
            "spec": {"trainer": block},
        }
    )


def _prefetch(policy: PodPolicy | None = None, **trainer: Any) -> dict[str, Any]:
    sweep = _sweep(**trainer)
    return build_prefetch_pod(sweep, effective_spec(sweep.spec), 3, policy=policy)


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {var["name"]: var for var in pod["spec"]["containers"][0]["env"]}


def test_prefetch_pod_runs_prefetch_with_the_trials_image_env_secret_and_cache() -> None:
    token = {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    pod = _prefetch(
        env=[token, {"name": "HF_ENDPOINT", "value": "http://hub"}],
        resources={"limits": {"nvidia.com/gpu": 1, "memory": "8Gi"}},
    )
    container = pod["spec"]["containers"][0]
    assert pod["metadata"]["name"] == "cached-prefetch"
    assert container["image"] == "trainer:1"
    assert (
        container["command"] == PREFETCH_COMMAND == ["python", "-m", "kubetune_trainer", "prefetch"]
    )
    env = _env(pod)
    assert env["HF_TOKEN"] == token
    assert env["HF_ENDPOINT"]["value"] == "http://hub"
    assert env[conventions.ENV_SECRET_ENV]["value"] == "HF_TOKEN"
    assert env[conventions.ENV_HF_HOME]["value"] == conventions.HF_CACHE_PATH
    assert json.loads(env[conventions.ENV_TRAINER_CONFIG]["value"])["model"] == "org/m"
    # It downloads, so never offline, and it needs no GPU.
    assert conventions.ENV_HF_HUB_OFFLINE not in env
    assert container["resources"] == {"limits": {"memory": "8Gi"}}
    assert {"name": conventions.HF_CACHE_VOLUME, "mountPath": conventions.HF_CACHE_PATH} in (
        container["volumeMounts"]
    )
    assert pod["spec"]["volumes"] == [
        {"name": conventions.HF_CACHE_VOLUME, "persistentVolumeClaim": {"claimName": "hf"}}
    ]
    # Hardened like a trial pod, runs once.
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["metadata"]["annotations"][ATTEMPT_ANNOTATION] == "3"


def test_prefetch_pod_is_the_sweeps_but_no_trial() -> None:
    pod = _prefetch()
    labels = pod["metadata"]["labels"]
    assert labels[conventions.LABEL_SWEEP] == "cached"
    assert labels[conventions.LABEL_MANAGED_BY] == conventions.MANAGED_BY
    assert labels[conventions.LABEL_COMPONENT] == conventions.COMPONENT_PREFETCH
    assert conventions.LABEL_TRIAL not in labels
    assert conventions.trial_number("cached", pod["metadata"]["name"]) is None
    seen = view(pod)
    assert seen.prefetch and seen.attempt == 3 and seen.result is None
    trial = build_trial_pod(_sweep(), effective_spec(_sweep().spec), 0, {})
    assert not view(trial).prefetch


def test_prefetch_pod_obeys_the_admin_pod_policy() -> None:
    with pytest.raises(PolicyRefused) as refused:
        _prefetch(policy=PodPolicy(), cache={"volume": {"hostPath": {"path": "/models"}}})
    assert "spec.trainer.volumes" in str(refused.value)


def test_trials_of_a_prefetched_sweep_run_offline_and_others_do_not() -> None:
    def offline(**trainer: Any) -> str | None:
        sweep = _sweep(**trainer)
        pod = build_trial_pod(sweep, effective_spec(sweep.spec), 0, {})
        var = _env(pod).get(conventions.ENV_HF_HUB_OFFLINE)
        return var["value"] if var else None

    assert offline() == "1"
    assert offline(model="tiny") is None  # nothing to download: no prefetch, no offline
    assert offline(model="/models/llm") is None  # a path in the image
    sweep = _sweep()
    assert cluster_prefetch(sweep.spec.trainer) == [("org/m", "model")]
    uncached = parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "plain", "namespace": "team"},
            "spec": {"trainer": {"image": "trainer:1", "model": "org/m"}},
        }
    )
    assert cluster_prefetch(uncached.spec.trainer) == []
    # The user's own offline cache: nothing to prefetch.
    user_offline = _sweep(env=[{"name": "HF_HUB_OFFLINE", "value": "1"}])
    assert cluster_prefetch(user_offline.spec.trainer) == []
    with_data = _sweep(dataset={"path": "org/data"})
    assert cluster_prefetch(with_data.spec.trainer) == [
        ("org/m", "model"),
        ("org/data", "dataset"),
    ]


def test_prefetch_pod_has_a_deadline() -> None:
    assert _prefetch()["spec"]["activeDeadlineSeconds"] == 2 * 3600  # the default, 2h
    pod = _prefetch(cache={"claimName": "hf-cache", "prefetchTimeout": "1h30m"})
    assert pod["spec"]["activeDeadlineSeconds"] == 5400


@pytest.mark.parametrize("timeout", ["0s", "soon", "500ms"])
def test_a_prefetch_timeout_must_be_a_duration_of_a_second_or_more(timeout: str) -> None:
    with pytest.raises(SpecError, match=r"trainer\.cache\.prefetchTimeout"):
        _sweep(cache={"claimName": "hf-cache", "prefetchTimeout": timeout})
