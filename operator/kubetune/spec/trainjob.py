"""Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1) as a trial workload (pure).

A TrainJob holds no pod template: its pods come from the JobSet template of the
(Cluster)TrainingRuntime that spec.runtimeRef names, which the Trainer controller turns into a
JobSet of the TrainJob's name, the trainer job (`node`) getting parallelism = completions =
spec.trainer.numNodes and its container `node` spec.trainer's image, command, args,
resourcesPerNode and env. What reaches the trial's pods from the TrainJob, and so all that
kubetune can put there, is (the API as released in Trainer v2.0/v2.1):

- spec.trainer.env: the trial contract (KUBETUNE_*) on container `node`;
- spec.podTemplateOverrides: entries of targetJobs + pod template metadata (labels,
  annotations) + a restricted spec (serviceAccountName, nodeSelector, affinity, tolerations,
  volumes, initContainers and containers with env and volumeMounts only, schedulingGates,
  imagePullSecrets), merged onto the runtime's pod templates, later entries winning: kubetune
  appends one for the trainer job with its labels and annotations.

What cannot reach the pods, so kubetune cannot do it (documented in docs/trials.md):
hardening (securityContext, automountServiceAccountToken), restartPolicy, the pod's
activeDeadlineSeconds (budget.trialTimeout is refused), the metrics containerPort, the
terminationMessagePolicy; and the runtime's own containers, volumes and security contexts
are out of reach of the admin pod policy, which therefore admits a TrainJob only when it names
a ClusterTrainingRuntime the admin listed (policy.trainingRuntimes) or the policy is
`privileged`.

Other shapes are refused: another apiVersion, spec.podSpecOverrides (before v2.0) and
spec.runtimePatches (the API after v2.1, which replaces podTemplateOverrides).
"""

from collections.abc import Mapping
from typing import Any

GROUP = "trainer.kubeflow.org"
API_VERSION = f"{GROUP}/v1alpha1"
KIND = "TrainJob"
# The Trainer's names: the trainer job of its runtimes and its container, the one trainer.*
# reaches (upstream pkg/constants: Node; the ancestor label marks the trainer job).
TRAINER_JOB = "node"
TRAINER_CONTAINER = "node"
ANCESTOR_LABEL = f"{GROUP}/trainjob-ancestor-step"
ANCESTOR_TRAINER = "trainer"
RUNTIME_KINDS = ("ClusterTrainingRuntime", "TrainingRuntime")
DEFAULT_RUNTIME_KIND = "ClusterTrainingRuntime"
# PodTemplateOverride.spec fields (v1alpha1 PodTemplateSpecOverride) and a container's
# (ContainerOverride): anything else the API server would drop from the object.
OVERRIDE_SPEC_FIELDS = frozenset(
    {
        "serviceAccountName",
        "nodeSelector",
        "affinity",
        "tolerations",
        "volumes",
        "initContainers",
        "containers",
        "schedulingGates",
        "imagePullSecrets",
    }
)
OVERRIDE_CONTAINER_FIELDS = frozenset({"name", "env", "volumeMounts"})
# Containers whose env only the Trainer's own API sets (ContainerOverride.env rule).
TRAINER_ENV_CONTAINERS = frozenset({"node", "dataset-initializer", "model-initializer"})
GPU = "nvidia.com/gpu"


def is_trainjob(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == KIND and str(obj.get("apiVersion", "")).startswith(f"{GROUP}/")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def spec_problems(obj: Mapping[str, Any], at: str, trainer_job: str) -> list[str]:
    """What the TrainJob needs to run as a trial (the first problem only), each naming its
    field under `at` (the object's field path)."""
    if obj.get("apiVersion") != API_VERSION:
        return [
            f"{at}.apiVersion: {obj.get('apiVersion')!r} is not supported for a TrainJob: "
            f"kubetune supports {API_VERSION} (Kubeflow Trainer v2.0 and v2.1, "
            "spec.podTemplateOverrides)"
        ]
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [f"{at}.spec: required: the TrainJob's spec"]
    ref = spec.get("runtimeRef")
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not ref["name"]:
        return [
            f"{at}.spec.runtimeRef.name: required: the (Cluster)TrainingRuntime whose template "
            "makes the trial's pods"
        ]
    if ref.get("kind", DEFAULT_RUNTIME_KIND) not in RUNTIME_KINDS:
        return [
            f"{at}.spec.runtimeRef.kind: must be one of {', '.join(RUNTIME_KINDS)} "
            f"(got {ref.get('kind')!r})"
        ]
    if ref.get("apiGroup", GROUP) != GROUP:
        return [f"{at}.spec.runtimeRef.apiGroup: must be {GROUP} (got {ref.get('apiGroup')!r})"]
    for field, why in (
        ("runtimePatches", "the API after Trainer v2.1"),
        ("podSpecOverrides", "the API before Trainer v2.0"),
    ):
        if field in spec:
            return [
                f"{at}.spec.{field}: not supported ({why}): kubetune supports {API_VERSION} "
                "with spec.podTemplateOverrides"
            ]
    if spec.get("managedBy") not in (None, f"{GROUP}/trainjob-controller"):
        return [
            f"{at}.spec.managedBy: leave it out: a TrainJob kubetune runs must be made into "
            "pods here, by the Trainer controller"
        ]
    trainer = spec.get("trainer")
    if trainer is not None and not isinstance(trainer, dict):
        return [f"{at}.spec.trainer: must be a mapping"]
    nodes = _dict(trainer).get("numNodes")
    if nodes is not None and (not isinstance(nodes, int) or isinstance(nodes, bool) or nodes < 1):
        return [f"{at}.spec.trainer.numNodes: must be a whole number of at least 1"]
    env = _dict(trainer).get("env")
    if env is not None and not (
        isinstance(env, list) and all(isinstance(e, dict) and e.get("name") for e in env)
    ):
        return [f"{at}.spec.trainer.env: must list env vars, each with a name"]
    return _override_problems(spec.get("podTemplateOverrides"), f"{at}.spec.podTemplateOverrides")


def _override_problems(overrides: Any, at: str) -> list[str]:
    if overrides is None:
        return []
    if not isinstance(overrides, list):
        return [f"{at}: must be a list of overrides"]
    for index, entry in enumerate(overrides):
        here = f"{at}[{index}]"
        if not isinstance(entry, dict):
            return [f"{here}: must be a mapping"]
        targets = entry.get("targetJobs")
        if not isinstance(targets, list) or not targets:
            return [
                f"{here}.targetJobs: required: the runtime's replicated jobs it applies to, "
                f"e.g. [{{name: {TRAINER_JOB}}}] (an override targeting nothing changes no pod)"
            ]
        for t, target in enumerate(targets):
            if not (isinstance(target, dict) and isinstance(target.get("name"), str)):
                return [f"{here}.targetJobs[{t}].name: required: a replicated job's name"]
            if not target["name"]:
                return [f"{here}.targetJobs[{t}].name: required: a replicated job's name"]
        meta = entry.get("metadata")
        if meta is not None:
            extra = sorted(set(_dict(meta)) - {"labels", "annotations"})
            if not isinstance(meta, dict) or extra:
                return [
                    f"{here}.metadata: only labels and annotations reach the pods (got "
                    f"{', '.join(extra) or type(meta).__name__})"
                ]
        spec = entry.get("spec")
        if spec is None:
            continue
        if not isinstance(spec, dict):
            return [f"{here}.spec: must be a mapping"]
        extra = sorted(set(spec) - OVERRIDE_SPEC_FIELDS)
        if extra:
            return [
                f"{here}.spec.{extra[0]}: not a field a TrainJob may override (it may set "
                f"{', '.join(sorted(OVERRIDE_SPEC_FIELDS))})"
            ]
        for kind in ("initContainers", "containers"):
            for c, container in enumerate(spec.get(kind) or []):
                where = f"{here}.spec.{kind}[{c}]"
                if not (isinstance(container, dict) and container.get("name")):
                    return [f"{where}.name: required: the runtime's container it overrides"]
                extra = sorted(set(container) - OVERRIDE_CONTAINER_FIELDS)
                if extra:
                    return [
                        f"{where}.{extra[0]}: a container override sets only env and volumeMounts"
                    ]
                if container.get("env") and container["name"] in TRAINER_ENV_CONTAINERS:
                    return [
                        f"{where}.env: the Trainer refuses env overrides on container "
                        f"{container['name']!r}: set the trainer's env in spec.trainer.env"
                    ]
    return []


def runtime_ref(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(kind, name) of the runtime a valid TrainJob references."""
    ref = _dict(_dict(obj.get("spec")).get("runtimeRef"))
    return str(ref.get("kind") or DEFAULT_RUNTIME_KIND), str(ref.get("name") or "")


def num_nodes(obj: Mapping[str, Any]) -> int:
    """The TrainJob's numNodes; 1 when it leaves it to the runtime (whose mlPolicy kubetune
    does not read)."""
    nodes = _dict(_dict(obj.get("spec")).get("trainer")).get("numNodes")
    return nodes if isinstance(nodes, int) and not isinstance(nodes, bool) and nodes > 0 else 1


def gpus(obj: Mapping[str, Any]) -> int:
    """GPUs the TrainJob asks for itself: numNodes x resourcesPerNode's nvidia.com/gpu (0 when
    the runtime's template sets them: kubetune does not read the runtime)."""
    resources = _dict(_dict(_dict(obj.get("spec")).get("trainer")).get("resourcesPerNode"))
    for kind in ("limits", "requests"):
        raw = _dict(resources.get(kind)).get(GPU)
        if raw is not None:
            try:
                return max(0, int(str(raw))) * num_nodes(obj)
            except ValueError:
                return 0
    return 0


def suspended(obj: Mapping[str, Any]) -> bool:
    return bool(_dict(obj.get("spec")).get("suspend"))
