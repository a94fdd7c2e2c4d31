"""trainer.cache: one Hugging Face cache volume mounted as HF_HOME in every trial pod."""

import json
from typing import Any

import pytest
from pydantic import ValidationError

from kubetune import conventions
from kubetune.builders.contract import trainer_config
from kubetune.builders.pod import build_trial_pod
from kubetune.builders.security import PolicyRefused
from kubetune.policy.pod_policy import PodPolicy
from kubetune.spec import HyperparameterSweep, effective_spec, parse_sweep
from kubetune.spec.trainer import TrainerSpec


def _sweep(trainer: dict[str, Any]) -> HyperparameterSweep:
    return parse_sweep(
        {
            "apiVersion": "kubetune.dev/v1alpha1",
            "kind": "HyperparameterSweep",
            "metadata": {"name": "cached", "namespace": "team"},
            "spec": {"trainer": {"image": "trainer:1", "model": "org/m", **trainer}},
        }
    )


def _pod(trainer: dict[str, Any], policy: PodPolicy | None = None) -> dict[str, Any]:
    sweep = _sweep(trainer)
    return build_trial_pod(sweep, effective_spec(sweep.spec), 1, {}, policy=policy)


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {var["name"]: var.get("value") for var in pod["spec"]["containers"][0]["env"]}


def test_a_claim_is_mounted_as_hf_home_in_every_trial() -> None:
    pod = _pod({"cache": {"claimName": "hf-models"}, "shmSize": "1Gi"})
    volumes = {volume["name"]: volume for volume in pod["spec"]["volumes"]}
    assert volumes[conventions.HF_CACHE_VOLUME] == {
        "name": conventions.HF_CACHE_VOLUME,
        "persistentVolumeClaim": {"claimName": "hf-models"},
    }
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    assert {"name": conventions.HF_CACHE_VOLUME, "mountPath": conventions.HF_CACHE_PATH} in mounts
    assert _env(pod)[conventions.ENV_HF_HOME] == conventions.HF_CACHE_PATH


def test_a_volume_source_is_used_as_written_under_kubetunes_name() -> None:
    csi = {"csi": {"driver": "filestore.csi.storage.gke.io", "volumeAttributes": {"a": "b"}}}
    pod = _pod({"cache": {"volume": csi}})
    assert pod["spec"]["volumes"] == [{"name": conventions.HF_CACHE_VOLUME, **csi}]


def test_without_a_cache_nothing_is_mounted_and_hf_home_is_unset() -> None:
    pod = _pod({})
    assert "volumes" not in pod["spec"]
    assert conventions.ENV_HF_HOME not in _env(pod)


def test_the_cache_stays_out_of_the_trainer_config() -> None:
    sweep = _sweep({"cache": {"claimName": "hf-models"}})
    assert sweep.spec.trainer is not None
    assert "cache" not in json.loads(trainer_config(sweep.spec.trainer))


def test_the_pod_policy_judges_the_cache_volume_like_any_other() -> None:
    with pytest.raises(PolicyRefused) as error:
        _pod({"cache": {"volume": {"hostPath": {"path": "/models"}}}}, policy=PodPolicy())
    assert any("hostPath volumes are not allowed" in problem for problem in error.value.problems)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"cache": {}}, "set exactly one of claimName or volume"),
        (
            {"cache": {"claimName": "a", "volume": {"emptyDir": {}}}},
            "set exactly one of claimName or volume",
        ),
        ({"cache": {"claimName": "Not_A_Name"}}, "cache.claimName"),
        ({"cache": {"volume": {"name": "x", "emptyDir": {}}}}, "volume.name: kubetune names it"),
        ({"cache": {"volume": {"emptyDir": {}, "nfs": {}}}}, "exactly one volume source"),
        (
            {"cache": {"claimName": "a"}, "env": [{"name": "HF_HOME", "value": "/x"}]},
            "HF_HOME is set by trainer.cache",
        ),
        (
            {
                "cache": {"claimName": "a"},
                "volumes": [{"name": conventions.HF_CACHE_VOLUME, "emptyDir": {}}],
            },
            "is kubetune's with cache",
        ),
        (
            {
                "cache": {"claimName": "a"},
                "volumes": [{"name": "v", "emptyDir": {}}],
                "volumeMounts": [{"name": "v", "mountPath": conventions.HF_CACHE_PATH}],
            },
            "cache already mounts",
        ),
    ],
)
def test_bad_cache_blocks_are_refused_naming_the_rule(block: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        TrainerSpec.model_validate({"model": "org/m", **block})
    assert message in str(error.value)
