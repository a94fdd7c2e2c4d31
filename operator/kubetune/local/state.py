"""The run's state.json: what --resume needs to rebuild the engine without repeating a trial."""

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubetune.durable import sync_folder
from kubetune.local.layout import STATE_TMP
from kubetune.spec import SweepSpec, TrialRecord

STATE_VERSION = 1


class StateError(Exception):
    """A state.json that cannot be resumed from; the message says why."""


class TrialAttempt(BaseModel):
    """A launched trial process: what --resume needs to end it if a killed run left it behind."""

    model_config = ConfigDict(populate_by_name=True)

    # KUBETUNE_ATTEMPT of this launch: its processes carry it, its result files name it.
    token: str
    # The trial's process group (its own session: pgid == the first process's pid).
    pgid: int
    # That first process's start time (/proc/<pid>/stat, clock ticks since boot), so a
    # reused pid is never taken for it; None where /proc is not available.
    start: int | None = None


class RunState(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    version: int = STATE_VERSION
    sweep: str
    # The effective spec the run started with, to refuse a resume with another search space.
    spec: dict[str, Any]
    history: list[TrialRecord] = Field(default_factory=list)
    wall_seconds: dict[int, float] = Field(default_factory=dict, alias="wallSeconds")
    started_at: str = Field(alias="startedAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")
    completion: str | None = None
    # Trials whose process was running at the last save, by trial number.
    in_flight: dict[int, TrialAttempt] = Field(default_factory=dict, alias="inFlight")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_state(path: Path, state: RunState) -> None:
    """Write atomically and durably: a crash or a full disk mid-write leaves the previous
    state.json as it was, so the run can always resume. OSError says why it did not save.
    """
    state.updated_at = now()
    data = json.dumps(state.model_dump(by_alias=True, exclude_none=True, mode="json"), indent=1)
    tmp = path.with_name(STATE_TMP)
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            # On disk before it replaces the old one: else a power cut may leave it empty.
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a partial copy only takes space the disk lacks
        raise
    sync_folder(path.parent)


def load_state(path: Path, any_version: bool = False) -> RunState:
    """The saved run; StateError when the file is missing, unreadable or not a run state.

    any_version: accept a run state of another version (to replace it, not to resume it).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StateError(f"{path}: no run to resume here (state file missing)") from None
    except OSError as error:
        raise StateError(f"{path}: cannot read: {error.strerror}") from None
    try:
        state = RunState.model_validate_json(text)
    except ValidationError as error:
        raise StateError(f"{path}: not a kubetune run state: {error.errors()[0]['msg']}") from None
    if state.version != STATE_VERSION and not any_version:
        raise StateError(f"{path}: state version {state.version}, expected {STATE_VERSION}")
    return state


def spec_dump(spec: SweepSpec) -> dict[str, Any]:
    dumped: dict[str, Any] = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped
