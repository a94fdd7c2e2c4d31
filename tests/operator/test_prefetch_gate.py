"""The prefetch gate in the reconciler: no trial of a sweep with trainer.cache and a hub
model starts before its prefetch pod filled the cache; a failed prefetch fails the sweep."""

from __future__ import annotations

import json
from typing import Any

from kubetune import conventions
from kubetune.operator.effects import Effects
from kubetune.operator.model_cache import MODEL_CACHED
from kubetune.operator.pod_state import PodView
from kubetune.trial_ending import TrialEnding
from tests.operator.test_reconcile import UID, body, condition, new, reconcile

PREFETCH = conventions.prefetch_name("s")
TRAINER = {"image": "trainer:1", "model": "org/llm", "cache": {"claimName": "hf"}}


def sweep(
    generation: int = 1, status: dict[str, Any] | None = None, **trainer: Any
) -> dict[str, Any]:
    made = body(generation, status)
    del made["spec"]["template"]
    made["spec"]["trainer"] = {**TRAINER, **trainer}
    made["spec"]["parameters"] = [
        {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-3}
    ]
    return made


def prefetch_pod(
    kind: str, exit_code: int | None = None, message: str = "", generation: int = 1, **more: Any
) -> PodView:
    ending = TrialEnding(exit_code, **more) if kind == "ended" else None
    return PodView(
        name=PREFETCH,
        uid=f"uid-prefetch-{generation}",
        attempt=generation,
        kind=kind,  # type: ignore[arg-type]
        owner_uid=UID,
        live=kind in ("pending", "running"),
        ending=ending,
        prefetch=True,
        message=message,
        finished_at="2026-01-01T00:00:00Z" if kind == "ended" else None,
    )


SUCCEEDED = json.dumps(
    {
        "status": "succeeded",
        "files": 3,
        "bytes": 1_500_000,
        "downloadedBytes": 1_500_000,
        "seconds": 2.5,
    }
)


def trial_names(effects: Effects) -> list[str]:
    return [item.name for item in effects.create]


def test_prefetch_pod_first_and_no_trial_until_it_succeeds() -> None:
    rec = new(default_image="trainer:1")
    effects = reconcile(rec, sweep(), {})
    assert effects.prefetch is not None and effects.prefetch["metadata"]["name"] == PREFETCH
    assert trial_names(effects) == [] and effects.status["history"] == []
    cached = condition(effects, MODEL_CACHED)
    assert cached["status"] == "False" and cached["reason"] == "Prefetching"
    assert "model org/llm" in cached["message"]
    assert effects.status["phase"] == "Pending"
    # Created but not yet in the index: no second pod.
    rec.note_created(PREFETCH, 1)
    assert reconcile(rec, sweep(), {}).prefetch is None
    # Running: still no trials, and the prefetch pod is not mistaken for a stray trial pod.
    effects = reconcile(rec, sweep(), {PREFETCH: prefetch_pod("running")})
    assert trial_names(effects) == [] and effects.delete == [] and effects.prefetch is None
    # Done: ModelCached True with the size, and the trials start, offline.
    effects = reconcile(rec, sweep(), {PREFETCH: prefetch_pod("ended", 0, SUCCEEDED)})
    cached = condition(effects, MODEL_CACHED)
    assert cached["status"] == "True" and cached["reason"] == "Prefetched"
    assert cached["message"].startswith("model org/llm: 1.50 MB (1.50 MB downloaded) in 2.5s")
    assert trial_names(effects) == ["s-t0000", "s-t0001"]
    env = {
        e["name"]: e.get("value")
        for e in effects.create[0].manifest["spec"]["containers"][0]["env"]
    }
    assert env[conventions.ENV_HF_HUB_OFFLINE] == "1"
    assert [e.reason for e in effects.events] == ["Prefetched"]
    assert effects.delete == []  # the finished prefetch pod stays (its log), never a trial


def test_failed_prefetch_fails_the_sweep_with_the_hubs_reason() -> None:
    rec = new(default_image="trainer:1")
    reconcile(rec, sweep(), {})
    reason = (
        "config error: trainer.model: model 'org/llm' is gated and the hub answered 403\x1b[31m"
    )
    failed = prefetch_pod("ended", 2, json.dumps({"status": "failed", "reason": reason}))
    effects = reconcile(rec, sweep(), {PREFETCH: failed})
    assert effects.status["phase"] == "Failed"
    assert trial_names(effects) == [] and effects.prefetch is None
    cached = condition(effects, MODEL_CACHED)
    assert cached["status"] == "False" and cached["reason"] == "PrefetchFailed"
    assert "gated and the hub answered 403" in cached["message"]
    assert "\x1b" not in cached["message"]  # foreign text is sanitized
    ready = condition(effects, "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PrefetchFailed"
    warnings = [e for e in effects.events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["PrefetchFailed"]
    assert "gated" in warnings[0].message
    # Level-triggered: later passes stay failed, say it once, and start nothing.
    again = reconcile(rec, sweep(), {PREFETCH: failed})
    assert again.status["phase"] == "Failed" and again.events == [] and trial_names(again) == []
    # A restarted operator keeps it failed from the status alone.
    restarted = reconcile(new(default_image="trainer:1"), sweep(status=again.status), {})
    assert restarted.status["phase"] == "Failed" and restarted.prefetch is None
    assert trial_names(restarted) == []


def test_an_edit_retries_a_failed_prefetch() -> None:
    rec = new(default_image="trainer:1")
    reconcile(rec, sweep(), {})
    failed = prefetch_pod("ended", 1, json.dumps({"status": "failed", "reason": "unreachable"}))
    effects = reconcile(rec, sweep(), {PREFETCH: failed})
    assert effects.status["phase"] == "Failed"
    token = {"name": "HF_TOKEN", "value": "x"}
    edited = reconcile(rec, sweep(2, env=[token]), {PREFETCH: failed})
    assert edited.delete == [(PREFETCH, "uid-prefetch-1")]  # the old generation's pod goes
    assert edited.status["phase"] == "Pending" and trial_names(edited) == []
    fresh = reconcile(rec, sweep(2, env=[token]), {})
    assert fresh.prefetch is not None
    assert fresh.prefetch["metadata"]["annotations"]["kubetune.dev/attempt"] == "2"


def test_a_log_tail_instead_of_json_still_gives_a_bounded_reason() -> None:
    rec = new(default_image="trainer:1")
    reconcile(rec, sweep(), {})
    tail = "Traceback ...\n" + "x" * 5000
    effects = reconcile(
        rec, sweep(), {PREFETCH: prefetch_pod("ended", 137, tail, detail="OOMKilled")}
    )
    message = condition(effects, MODEL_CACHED)["message"]
    assert effects.status["phase"] == "Failed"
    assert "exit 137" in message and "OOMKilled" in message and len(message) <= 512


def test_an_evicted_prefetch_runs_again() -> None:
    rec = new(default_image="trainer:1")
    reconcile(rec, sweep(), {})
    evicted = prefetch_pod("ended", None, "", disruption="Evicted")
    effects = reconcile(rec, sweep(), {PREFETCH: evicted})
    assert effects.status["phase"] == "Pending"
    assert effects.delete == [(PREFETCH, "uid-prefetch-1")]


def test_restart_with_model_cached_creates_no_prefetch_pod() -> None:
    rec = new(default_image="trainer:1")
    reconcile(rec, sweep(), {})
    done = reconcile(rec, sweep(), {PREFETCH: prefetch_pod("ended", 0, SUCCEEDED)})
    # A new operator, the prefetch pod long gone: the condition is the record.
    restarted = reconcile(new(default_image="trainer:1"), sweep(status=done.status), {})
    assert restarted.prefetch is None
    assert trial_names(restarted) == ["s-t0000", "s-t0001"]
    # Another model is another download: the gate closes again for new trials.
    other = reconcile(
        new(default_image="trainer:1"), sweep(status=done.status, model="org/other"), {}
    )
    assert other.prefetch is not None
    assert condition(other, MODEL_CACHED)["status"] == "False"


def test_sweeps_without_cache_or_hub_model_never_prefetch() -> None:
    for trainer in ({"cache": None}, {"model": "tiny"}):
        effects = reconcile(new(default_image="trainer:1"), sweep(**trainer), {})
        assert effects.prefetch is None
        assert trial_names(effects) == ["s-t0000", "s-t0001"]
        assert MODEL_CACHED not in {c["type"] for c in effects.status["conditions"]}


def test_a_prefetch_past_its_deadline_fails_the_sweep_saying_so() -> None:
    rec = new(default_image="trainer:1")
    reconcile(rec, sweep(), {})
    # What a pod killed at activeDeadlineSeconds looks like (pod_state: stop "timeout").
    late = prefetch_pod("ended", 143, "", stop="timeout", detail="DeadlineExceeded, Error")
    effects = reconcile(rec, sweep(), {PREFETCH: late})
    assert effects.status["phase"] == "Failed"
    assert trial_names(effects) == [] and effects.delete == []  # not retried as a disruption
    cached = condition(effects, MODEL_CACHED)
    assert cached["status"] == "False" and cached["reason"] == "PrefetchFailed"
    assert "did not finish within trainer.cache.prefetchTimeout" in cached["message"]
    warnings = [e for e in effects.events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["PrefetchFailed"]
    assert "prefetchTimeout" in warnings[0].message
