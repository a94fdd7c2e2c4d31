"""Values the trainer never reports: those of its secret-sourced environment variables.

The pod builder names the trainer's env vars that come from a secretKeyRef in
KUBETUNE_SECRET_ENV; well-known credential variables count too, however they were set.
Their values become REDACTED in the log, the termination message and result.json, so an
exception that echoes a token (an HTTP error quoting its URL or header) does not carry
it into a sweep's status, Events or a `kubetune run` table.
"""

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from kubetune import conventions
from kubetune.trial_result import TrialResult

# Credentials a trainer run may be handed under their usual names.
WELL_KNOWN_SECRETS = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "WANDB_API_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
)


def secret_names(env: Mapping[str, str]) -> set[str]:
    named = env.get(conventions.ENV_SECRET_ENV, "").split(",")
    return {name.strip() for name in named if name.strip()} | set(WELL_KNOWN_SECRETS)


def _spellings(value: str) -> set[str]:
    """The value as written raw, and as JSON and repr() escape it inside quotes."""
    return {value, json.dumps(value)[1:-1], repr(value)[1:-1]}


class Redactor:
    """Replaces every given value in a text; longest first, so no part of one is left."""

    def __init__(self, values: Iterable[str]) -> None:
        spelled = {form for value in values if value for form in _spellings(value)}
        ordered = sorted(spelled, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Redactor":
        return cls(env[name] for name in secret_names(env) if env.get(name))

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(conventions.REDACTED, text)

    def value(self, data: Any) -> Any:
        """A JSON-like value with every string in it redacted (mapping keys are left alone)."""
        if isinstance(data, str):
            return self(data)
        if isinstance(data, dict):
            return {key: self.value(item) for key, item in data.items()}
        if isinstance(data, list | tuple):
            return [self.value(item) for item in data]
        return data

    def result(self, result: TrialResult) -> TrialResult:
        if self._pattern is None:
            return result
        return TrialResult.model_validate(self.value(result.model_dump()))


_active: Redactor | None = None


def active() -> Redactor:
    """The process's redactor, from its environment unless `install` chose another."""
    global _active
    if _active is None:
        _active = Redactor.from_env(os.environ)
    return _active


def redact(text: str) -> str:
    return active()(text)


class RedactingStream:
    """A text stream that redacts each write: what libraries print goes through it too.

    A value split across two writes is not caught; print() and tracebacks write whole lines.
    """

    def __init__(self, stream: TextIO) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        self.wrapped.write(redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def install(env: Mapping[str, str]) -> Redactor:
    """Redact the secrets of `env` from now on, in sys.stdout and sys.stderr as well."""
    global _active
    _active = Redactor.from_env(env)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))
    return _active
