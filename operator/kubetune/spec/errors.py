"""Turn validation failures into one line per problem: the field path and the rule."""

import re
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

_UNION_TAGS = {"float", "int", "categorical"}
_SUBFIELD = re.compile(
    r"^((?:[A-Za-z_][A-Za-z0-9_]*|\[\d+\])(?:\.[A-Za-z_]\w*|\[\d+\])*): (.*)$", re.S
)


class SpecError(Exception):
    """A manifest that is not a valid HyperparameterSweep; .problems has one line each."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))


def field_path(loc: Sequence[Any]) -> str:
    path = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in _UNION_TAGS:
            pass  # pydantic's discriminator tag, not a field the user wrote
        elif isinstance(part, str) and part.startswith("function-"):
            pass
        else:
            path += f".{part}" if path else str(part)
        previous = part
    return path


def _join(path: str, sub: str) -> str:
    if not path:
        return sub
    return path + sub if sub.startswith("[") else f"{path}.{sub}"


def _rule(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see kubetune validate --explain)"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {error.get('input')!r}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<="}.get(
            kind, "<"
        )
        bound = next(iter(ctx.values()), "")
        return f"must be {sign} {bound}, got {error.get('input')!r}"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}, got {error.get('input')!r}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "too_long":
        # The input itself may be huge: say how long it is, never echo it.
        return f"must have at most {ctx.get('max_length')} entries, got {ctx.get('actual_length')}"
    message: str = error["msg"]
    return message.removeprefix("Value error, ")


def describe(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        path = field_path(item["loc"])
        rule = _rule(item)
        match = _SUBFIELD.match(rule) if item["type"] == "value_error" else None
        if match:
            problems.append(f"{_join(path, match.group(1))}: {match.group(2)}")
        else:
            problems.append(f"{path}: {rule}" if path else rule)
    return problems
