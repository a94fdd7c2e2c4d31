"""The run's state.json: what --resume needs to rebuild the engine without repeating a trial."""

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubetune.spec import SweepSpec, TrialRecord

STATE_FILE = "state.json"
STATE_VERSION = 1


class StateError(Exception):
    """A state.json that cannot be resumed from; the message says why."""


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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def save_state(path: Path, state: RunState) -> None:
    """Write atomically: a crash mid-write must not leave a run that cannot resume."""
    state.updated_at = now()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps(state.model_dump(by_alias=True, exclude_none=True, mode="json"), indent=1),
        encoding="utf-8",
    )
    os.replace(tmp, path)


def load_state(path: Path) -> RunState:
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
    if state.version != STATE_VERSION:
        raise StateError(f"{path}: state version {state.version}, expected {STATE_VERSION}")
    return state


def spec_dump(spec: SweepSpec) -> dict[str, Any]:
    dumped: dict[str, Any] = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped
