from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from kubetune.crd import CRD_FILE, build_crd, render_crd

ROOT = Path(__file__).resolve().parents[2]

# The only leaves that may hold any value: not the spec's own structure.
ALLOWED_ANY = {
    "spec.parameters[].values[]",  # categorical choices: numbers, strings or booleans
    "spec.trainer.args{}",  # free-form trainer arguments
    # Kubernetes objects too large to copy into the CRD; the API server checks them on the pod.
    "spec.trainer.affinity",
    "spec.trainer.volumes[]",
    "spec.trainer.cache.volume",
    "spec.template.metadata",  # the user's own pod template
    "spec.template.spec",
    # A whole trial object (a batch/v1 Job): the API server checks it when kubetune creates it.
    "spec.workload.object",
    "status.best.parameters{}",
    "status.paretoFront[].parameters{}",
    "status.history[].p{}",
}


def walk(node: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in node.get("properties", {}).items():
        found += walk(child, f"{path}.{name}" if path else name)
    if "items" in node:
        found += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += walk(node["additionalProperties"], f"{path}{{}}")
    return found


def version() -> dict[str, Any]:
    versions: list[dict[str, Any]] = build_crd()["spec"]["versions"]
    return versions[0]


def test_committed_crd_is_fresh() -> None:
    committed = (ROOT / CRD_FILE).read_text(encoding="utf-8")
    assert committed == render_crd(), "crds/ is stale: run `kubetune crd --write`"


def test_schema_is_structural() -> None:
    schema = version()["schema"]["openAPIV3Schema"]
    for path, node in walk(schema, ""):
        assert (
            not {"$ref", "anyOf", "oneOf", "allOf", "$defs", "const", "prefixItems"} & node.keys()
        ), path
        typed = (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        )
        assert typed, f"{path} has no type"
        if node.get("x-kubernetes-preserve-unknown-fields"):
            assert path in ALLOWED_ANY, f"{path} preserves unknown fields"


def test_schema_keeps_rules_the_api_server_can_check() -> None:
    spec = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert spec["algorithm"]["properties"]["name"]["enum"] == [
        "auto", "tpe", "random", "grid", "gp", "cmaes", "qmc", "nsga2"
    ]  # fmt: skip
    assert spec["algorithm"]["properties"]["name"]["default"] == "auto"
    assert spec["budget"]["properties"]["maxTrials"]["minimum"] == 1
    param = spec["parameters"]["items"]
    assert param["required"] == ["name", "type"]
    assert param["properties"]["type"]["enum"] == ["float", "int", "categorical"]
    assert param["properties"]["values"]["minItems"] == 1
    # A default inside the merged union would be added to every variant by the API server.
    assert "default" not in param["properties"]["log"]


def test_trainer_pod_fields_are_typed_where_small() -> None:
    spec = version()["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    trainer = spec["trainer"]["properties"]
    toleration = trainer["tolerations"]["items"]["properties"]
    assert toleration["operator"]["enum"] == ["Exists", "Equal"]
    assert toleration["effect"]["enum"] == ["NoSchedule", "PreferNoSchedule", "NoExecute"]
    assert trainer["imagePullSecrets"]["items"]["required"] == ["name"]
    assert trainer["volumeMounts"]["items"]["required"] == ["name", "mountPath"]
    assert trainer["nodeSelector"]["additionalProperties"] == {"type": "string"}
    assert trainer["shmSize"]["x-kubernetes-int-or-string"] is True
    assert spec["queueName"]["maxLength"] == 63


def test_names_subresource_and_printer_columns() -> None:
    crd = build_crd()
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["hps", "sweep"] and names["categories"] == ["kubetune"]
    assert version()["subresources"] == {"status": {}}
    printed = version()["additionalPrinterColumns"]
    columns = [c["name"].upper() for c in printed]
    assert columns == ["PHASE", "BEST", "METRIC", "TRIALS", "RUNNING", "QUEUED", "AGE"]
    # Queued trials only exist with Kueue (spec.queueName): a wide column.
    assert [c["name"] for c in printed if c.get("priority")] == ["Queued"]


def test_crd_is_a_valid_kubernetes_object() -> None:
    crd = yaml.safe_load(render_crd())
    kubernetes_validate.validate(crd, "1.32", strict=True)
