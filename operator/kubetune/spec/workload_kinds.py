"""The workload kinds a trial can run as, and where each keeps its pod templates (pure).

Each kind says: where its pod templates are (so kubetune's labels, the trial contract,
hardening and the admin pod policy reach every pod it makes), which template holds the
primary pod and which labels its controller puts on that one pod (the trial is judged by
it), and what makes the object run exactly once. Label names are the controllers' own:
JobSet (jobset.sigs.k8s.io/*, batch.kubernetes.io/job-completion-index) and the Kubeflow
training operator v1 (training.kubeflow.org/*).

Any other kind runs with the pod template paths, primary pod labels and success and failure
conditions the sweep gives (custom_kind; spec/status_match.py).

A Kubeflow Trainer v2 TrainJob (trainer.kubeflow.org/v1alpha1) holds no pod template: its pods
come from the referenced (Cluster)TrainingRuntime's JobSet template; what kubetune can put on
them goes through the TrainJob's own fields (spec/trainjob.py says which, and what cannot).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubetune.spec import trainjob
from kubetune.spec.status_match import StatusMatch, resolve

# (field path under the object, the pod template there)
Templates = list[tuple[str, dict[str, Any]]]

JOBSET_REPLICATED_JOB = "jobset.sigs.k8s.io/replicatedjob-name"
JOBSET_JOB_INDEX = "jobset.sigs.k8s.io/job-index"
JOB_COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
PYTORCH_REPLICA_TYPE = "training.kubeflow.org/replica-type"
PYTORCH_REPLICA_INDEX = "training.kubeflow.org/replica-index"


@dataclass(frozen=True)
class WorkloadKind:
    api_version: str
    kind: str
    plural: str
    success: str  # status condition type when it succeeded
    failure: str  # ... and when it failed
    templates: Callable[[Mapping[str, Any]], Templates]
    # Index into templates() of the primary pod's template.
    primary: Callable[[Mapping[str, Any]], int]
    # Labels only the primary pod has, among the object's pods ({} : it has one pod).
    primary_labels: Callable[[Mapping[str, Any]], dict[str, str]]
    # Make the object run once (kubetune requeues a disrupted trial itself) and suspended.
    run_once: Callable[[dict[str, Any]], None]
    suspend: Callable[[dict[str, Any]], None]
    # A kind kubetune does not know: (success, failure) as the sweep gives them; its plural
    # is found by discovery. None: the condition types above, with status "True".
    conditions: tuple[StatusMatch, StatusMatch] | None = None

    @property
    def custom(self) -> bool:
        return self.conditions is not None

    def _matches(self) -> tuple[StatusMatch, StatusMatch]:
        if self.conditions is not None:
            return self.conditions
        return StatusMatch(type=self.success), StatusMatch(type=self.failure)

    def succeeded(self, obj: Mapping[str, Any]) -> bool:
        return self._matches()[0].matches(obj)

    def failed(self, obj: Mapping[str, Any]) -> str | None:
        """Why the workload failed (its condition's reason and message: foreign text), or
        None while it has not."""
        failure = self._matches()[1]
        if not failure.matches(obj):
            return None
        return failure.reason(obj) or self.failure or failure.describe()

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _job_templates(obj: Mapping[str, Any]) -> Templates:
    template = _dict(obj.get("spec")).get("template")
    return [("spec.template", template)] if isinstance(template, dict) else []


def _job_run_once(obj: dict[str, Any]) -> None:
    obj["spec"]["backoffLimit"] = 0
    # budget.trialTimeout is the pod's activeDeadlineSeconds (one judgment, on the pod); a
    # Job-level deadline would delete the pod and look like a disruption.
    obj["spec"].pop("activeDeadlineSeconds", None)


def _jobs(obj: Mapping[str, Any]) -> list[Any]:
    jobs = _dict(obj.get("spec")).get("replicatedJobs")
    return jobs if isinstance(jobs, list) else []


def _jobset_templates(obj: Mapping[str, Any]) -> Templates:
    found: Templates = []
    for index, job in enumerate(_jobs(obj)):
        template = _dict(_dict(_dict(job).get("template")).get("spec")).get("template")
        if isinstance(template, dict):
            found.append((f"spec.replicatedJobs[{index}].template.spec.template", template))
    return found


def _jobset_primary_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """Replicated job 0's Job 0's pod 0 (its completion index when the Job is Indexed)."""
    first = _dict(_jobs(obj)[0]) if _jobs(obj) else {}
    labels = {JOBSET_REPLICATED_JOB: str(first.get("name", "")), JOBSET_JOB_INDEX: "0"}
    if _dict(_dict(first.get("template")).get("spec")).get("completionMode") == "Indexed":
        labels[JOB_COMPLETION_INDEX] = "0"
    return labels


def _jobset_run_once(obj: dict[str, Any]) -> None:
    obj["spec"]["failurePolicy"] = {**_dict(obj["spec"].get("failurePolicy")), "maxRestarts": 0}
    for job in _jobs(obj):
        _dict(_dict(job.get("template")).get("spec"))["backoffLimit"] = 0
        _dict(_dict(job.get("template")).get("spec")).pop("activeDeadlineSeconds", None)


def _replica_types(obj: Mapping[str, Any]) -> list[str]:
    specs = _dict(_dict(obj.get("spec")).get("pytorchReplicaSpecs"))
    # Master first: it is the primary pod when there is one.
    return sorted(specs, key=lambda name: (name != "Master", name))


def _pytorch_templates(obj: Mapping[str, Any]) -> Templates:
    specs = _dict(_dict(obj.get("spec")).get("pytorchReplicaSpecs"))
    found: Templates = []
    for name in _replica_types(obj):
        template = _dict(specs[name]).get("template")
        if isinstance(template, dict):
            found.append((f"spec.pytorchReplicaSpecs.{name}.template", template))
    return found


def _pytorch_primary_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    """The master (else worker 0): the training operator labels replica types lowercased."""
    types = _replica_types(obj)
    first = types[0] if types else "Master"
    return {PYTORCH_REPLICA_TYPE: first.lower(), PYTORCH_REPLICA_INDEX: "0"}


def _pytorch_run_once(obj: dict[str, Any]) -> None:
    spec = obj["spec"]
    spec["runPolicy"] = {**_dict(spec.get("runPolicy")), "backoffLimit": 0}
    spec["runPolicy"].pop("activeDeadlineSeconds", None)
    for replica in _dict(spec.get("pytorchReplicaSpecs")).values():
        if isinstance(replica, dict):
            replica["restartPolicy"] = "Never"


def _suspend_spec(obj: dict[str, Any]) -> None:
    obj["spec"]["suspend"] = True


def _suspend_run_policy(obj: dict[str, Any]) -> None:
    obj["spec"]["runPolicy"] = {**_dict(obj["spec"].get("runPolicy")), "suspend": True}


JOB = WorkloadKind(
    "batch/v1",
    "Job",
    "jobs",
    "Complete",
    "Failed",
    _job_templates,
    lambda _obj: 0,
    lambda _obj: {},
    _job_run_once,
    _suspend_spec,
)
JOBSET = WorkloadKind(
    "jobset.x-k8s.io/v1alpha2",
    "JobSet",
    "jobsets",
    "Completed",
    "Failed",
    _jobset_templates,
    lambda _obj: 0,
    _jobset_primary_labels,
    _jobset_run_once,
    _suspend_spec,
)
PYTORCH_JOB = WorkloadKind(
    "kubeflow.org/v1",
    "PyTorchJob",
    "pytorchjobs",
    "Succeeded",
    "Failed",
    _pytorch_templates,
    lambda _obj: 0,
    _pytorch_primary_labels,
    _pytorch_run_once,
    _suspend_run_policy,
)


def _trainjob_primary_labels(_obj: Mapping[str, Any]) -> dict[str, str]:
    """Pod 0 of the trainer job (an Indexed Job, replicas 1, numNodes pods), as the JobSet
    and Job controllers label it; builders/trainjob.py puts the sweep's trainerJob name in."""
    return {
        JOBSET_REPLICATED_JOB: trainjob.TRAINER_JOB,
        JOBSET_JOB_INDEX: "0",
        JOB_COMPLETION_INDEX: "0",
    }


def _trainjob_run_once(_obj: dict[str, Any]) -> None:
    # The TrainJob API has no retry setting: the runtime's JobSet failurePolicy and Jobs'
    # backoffLimit decide (docs/trials.md); kubetune judges whatever the TrainJob reports.
    return None


TRAINJOB = WorkloadKind(
    trainjob.API_VERSION,
    trainjob.KIND,
    "trainjobs",
    "Complete",
    "Failed",
    lambda _obj: [],  # no pod template: builders/trainjob.py
    lambda _obj: 0,
    _trainjob_primary_labels,
    _trainjob_run_once,
    _suspend_spec,
)
KINDS = {(k.api_version, k.kind): k for k in (JOB, JOBSET, PYTORCH_JOB, TRAINJOB)}


def custom_kind(
    obj: Mapping[str, Any],
    paths: list[str],
    primary_labels: Mapping[str, str],
    success: StatusMatch,
    failure: StatusMatch,
) -> WorkloadKind:
    """A kind kubetune does not know, as the sweep describes it: its pod templates at
    `paths` (the primary pod's first), run as written (kubetune cannot make it run once or
    suspend it: the kind's own retries are the user's to turn off)."""
    frozen = tuple(paths)
    labels = dict(primary_labels)

    def templates(target: Mapping[str, Any]) -> Templates:
        found = ((path, resolve(target, path)) for path in frozen)
        return [(path, template) for path, template in found if isinstance(template, dict)]

    def as_written(_obj: dict[str, Any]) -> None:
        return None

    return WorkloadKind(
        str(obj.get("apiVersion")),
        str(obj.get("kind")),
        "",
        "",
        "",
        templates,
        lambda _obj: 0,
        lambda _obj: dict(labels),
        as_written,
        as_written,
        (success, failure),
    )


def kind_of(obj: Mapping[str, Any]) -> WorkloadKind | None:
    return KINDS.get((str(obj.get("apiVersion")), str(obj.get("kind"))))


def selector_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def parse_selector(text: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in text.split(",") if item)
    return {key: value for key, _sep, value in pairs}
