"""The project's real CRD (crds/) through kubectl: what `kubectl get hps` shows users."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetune import API_GROUP, PLURAL
from kubetune.spec.parameters import MAX_CHOICES

from .cluster import Cluster

CRD = Path(__file__).parents[2] / "crds" / f"{PLURAL}.{API_GROUP}.yaml"
SWEEP = """
apiVersion: kubetune.dev/v1alpha1
kind: HyperparameterSweep
metadata: {name: llama-lora}
spec:
  parameters:
    - {name: learning_rate, type: float, min: 0.00005, max: 0.0005, log: true}
    - {name: lora_r, type: categorical, values: [8, 16, 32]}
"""


@pytest.fixture(scope="module")
def real_crd(cluster: Cluster) -> None:
    if not CRD.exists():
        pytest.skip(f"{CRD} has not been generated")
    result = cluster.kubectl("apply", "-f", str(CRD))
    assert result.returncode == 0, result.stderr


def test_get_hps_shows_the_printer_columns(
    cluster: Cluster, namespace: str, real_crd: None
) -> None:
    created = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=SWEEP)
    assert created.returncode == 0, created.stderr
    status = (
        '{"status":{"phase":"Running","objective":"eval_loss",'
        '"best":{"value":1.132,"trial":"llama-lora-t0007","number":7},'
        '"trials":{"total":12,"running":4}}}'
    )
    patched = cluster.kubectl(
        "patch",
        "-n",
        namespace,
        "hps",
        "llama-lora",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    )
    assert patched.returncode == 0, patched.stderr
    lines = cluster.kubectl("get", "-n", namespace, "hps").stdout.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "BEST", "METRIC", "TRIALS", "RUNNING", "AGE"]
    assert lines[1].split()[:6] == ["llama-lora", "Running", "1.132", "eval_loss", "12", "4"]
    assert "llama-lora" in cluster.kubectl("get", "-n", namespace, "sweep").stdout


def test_invalid_sweep_is_rejected_naming_the_field(
    cluster: Cluster, namespace: str, real_crd: None
) -> None:
    bad = SWEEP.replace("type: float", "type: floaty")
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=bad)
    assert result.returncode != 0
    assert 'spec.parameters[0].type: Unsupported value: "floaty"' in result.stderr


def test_api_server_refuses_a_categorical_over_max_items(
    cluster: Cluster, namespace: str, real_crd: None
) -> None:
    values = ", ".join(str(v) for v in range(MAX_CHOICES + 1))
    huge = SWEEP.replace("values: [8, 16, 32]", f"values: [{values}]")
    result = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=huge)
    assert result.returncode != 0
    assert (
        f"spec.parameters[1].values: Too many: {MAX_CHOICES + 1}: must have at most "
        f"{MAX_CHOICES} items" in result.stderr
    )


def test_yaml_11_booleans_in_a_crd_are_rejected_as_kubectl_sends_them(cluster: Cluster) -> None:
    """kubectl's YAML parser reads an unquoted `n` as false; the API server then cannot decode
    `required: [false]` into the schema and answers 400, so such a CRD never installs."""
    crd = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: traps.example.kubetune.dev}
spec:
  group: example.kubetune.dev
  scope: Namespaced
  names: {plural: traps, singular: trap, kind: Trap}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [n]
              properties:
                n: {type: integer}
"""
    result = cluster.kubectl("apply", "-f", "-", input=crd)
    assert result.returncode != 0
    assert "cannot unmarshal bool" in result.stderr
    assert "openAPIV3Schema.properties.spec.required" in result.stderr
    quoted = cluster.kubectl(
        "apply", "-f", "-", input=crd.replace("[n]", "['n']").replace(" n:", " 'n':")
    )
    assert quoted.returncode == 0, quoted.stderr
