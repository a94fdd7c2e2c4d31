"""User-given success and failure conditions for workload kinds kubetune does not know, and
the field paths that say where such a kind keeps its pod templates. Pure.

Katib writes these as GJSON expressions evaluated on the object. kubetune takes a closed,
bounded form instead, so a tenant's sweep can never make the operator run an expression
language: a StatusMatch is either

- `{type: Complete, status: "True"}`: some entry of status.conditions has that type and
  status (status defaults to "True"); or
- `{field: status.phase, equals: Succeeded}`: the value at that path under status, as text,
  equals the given one.

A field path is dot-separated names with optional `[N]` list indices
(`spec.replicatedJobs[0].template.spec.template`), at most MAX_SEGMENTS segments, each a
plain name: evaluation is a bounded walk down the object, nothing else.
"""

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from kubetune.spec.parameters import SpecModel

MAX_SEGMENTS = 12
# A name (a map key such as a field or a PyTorchJob replica type) and optional list indices.
_SEGMENT = re.compile(r"^([A-Za-z0-9_-]{1,63})((?:\[\d{1,4}\])*)$")
_INDEX = re.compile(r"\[(\d+)\]")
CONDITION_TYPE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"

# One step of a parsed path: a key of a mapping, or an index into a list.
Step = str | int


def path_problem(path: str, under: str | None = None) -> str | None:
    """Why `path` is no valid field path (None: it is); `under`: its first name must be this."""
    segments = path.split(".")
    if len(segments) > MAX_SEGMENTS:
        return f"at most {MAX_SEGMENTS} dot-separated names"
    for segment in segments:
        if not _SEGMENT.match(segment):
            return (
                f"{segment!r} is no plain name: use names of letters, digits, - and _, "
                "each optionally followed by [N] list indices"
            )
    if under is not None and _SEGMENT.match(segments[0]) and _steps(segments[0])[0] != under:
        return f"must start with {under}."
    return None


def parse_path(path: str) -> list[Step]:
    """The steps of a valid path (call path_problem first)."""
    steps: list[Step] = []
    for segment in path.split("."):
        steps += _steps(segment)
    return steps


def _steps(segment: str) -> list[Step]:
    match = _SEGMENT.match(segment)
    assert match is not None
    return [match.group(1), *(int(i) for i in _INDEX.findall(match.group(2)))]


def resolve(obj: Any, path: str) -> Any:
    """The value at `path` in obj, or None where the path leads nowhere."""
    value = obj
    for step in parse_path(path):
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and step < len(value) else None
        else:
            value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


class StatusMatch(SpecModel):
    """A test on a workload's status: a condition (`type`, `status`) or a field's value
    (`field`, `equals`)."""

    type: str | None = Field(
        default=None,
        pattern=CONDITION_TYPE_PATTERN,
        description="A status.conditions[].type; matches when that condition has `status`.",
    )
    status: str = Field(
        default="True",
        pattern=r"^(True|False|Unknown)$",
        description='The condition\'s status that matches: "True" (default), "False" or "Unknown".',
    )
    field: str | None = Field(
        default=None,
        max_length=400,
        description=(
            "A path under the object's status (e.g. status.phase): names and [N] indices, "
            f"at most {MAX_SEGMENTS}. Matches when its value, as text, equals `equals`."
        ),
    )
    equals: str | None = Field(
        default=None, max_length=253, description="The value `field` must have."
    )

    @model_validator(mode="after")
    def _one_form(self) -> "StatusMatch":
        if (self.type is None) == (self.field is None):
            raise ValueError("set exactly one of type (a status condition) or field")
        if self.field is not None:
            if self.equals is None:
                raise ValueError("field: needs equals, the value that matches")
            problem = path_problem(self.field, under="status")
            if problem is not None:
                raise ValueError(f"field: {problem}")
        elif self.equals is not None:
            raise ValueError("equals: only with field")
        return self

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if self.type is not None:
            conditions = _dict(obj.get("status")).get("conditions")
            return any(
                isinstance(c, dict)
                and c.get("type") == self.type
                and c.get("status") == self.status
                for c in (conditions if isinstance(conditions, list) else [])
            )
        assert self.field is not None
        value = resolve(obj, self.field)
        if isinstance(value, bool):
            value = "true" if value else "false"
        return isinstance(value, (str, int, float)) and str(value) == self.equals

    def describe(self) -> str:
        if self.type is not None:
            return f"condition {self.type}={self.status}"
        return f"{self.field}={self.equals}"

    def reason(self, obj: Mapping[str, Any]) -> str:
        """The matching condition's reason and message (foreign text: the caller bounds
        it); "" when it has none, or for a field."""
        if self.type is not None:
            for c in _dict(obj.get("status")).get("conditions") or []:
                if isinstance(c, dict) and c.get("type") == self.type:
                    return ": ".join(str(c[k]) for k in ("reason", "message") if c.get(k))
        return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
