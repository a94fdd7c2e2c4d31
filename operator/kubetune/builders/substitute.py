"""How a trial's parameters reach its container: ${params.NAME} placeholders and KUBETUNE_PARAMS."""

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from kubetune.builders.errors import BuildError

PLACEHOLDER = re.compile(r"\$\{params\.([^}]*)\}")

ParamValue = bool | int | float | str


def render_value(value: ParamValue) -> str:
    """A parameter as text: strings verbatim, numbers and booleans as JSON (true, 0.0001)."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def params_json(params: Mapping[str, ParamValue]) -> str:
    """The KUBETUNE_PARAMS value: the parameters as one JSON object, keys sorted."""
    return json.dumps(dict(params), sort_keys=True)


def unknown_placeholder(name: str, known: Iterable[str]) -> str:
    names = ", ".join(sorted(known)) or "none"
    return f"${{params.{name}}} names no parameter (known: {names})"


def substitute(text: str, params: Mapping[str, ParamValue], field: str) -> str:
    """Replace every ${params.NAME}; an unknown NAME is an error naming the field."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise BuildError(field, unknown_placeholder(name, params))
        return render_value(params[name])

    return PLACEHOLDER.sub(replace, text)


def _texts(container: dict[str, Any], field: str) -> Iterator[tuple[str, Any, Any, str]]:
    """Every text substituted in one container: (field path, holder, key, text).

    The one definition of where ${params.NAME} works: command, args and literal env values.
    """
    for key in ("command", "args"):
        items = container.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise BuildError(f"{field}.{key}", "must be a list of strings")
        for index, item in enumerate(items):
            yield f"{field}.{key}[{index}]", items, index, str(item)
    for index, var in enumerate(container.get("env") or []):
        if isinstance(var, dict) and isinstance(var.get("value"), str):
            yield f"{field}.env[{index}].value", var, "value", var["value"]


def substitute_container(
    container: dict[str, Any], params: Mapping[str, ParamValue], field: str
) -> None:
    """Substitute in command, args and literal env values of one container, in place."""
    for path, holder, key, text in list(_texts(container, field)):
        holder[key] = substitute(text, params, path)


def placeholders(container: dict[str, Any], field: str) -> list[tuple[str, str]]:
    """(field path, NAME) of every ${params.NAME} in one container, in order."""
    return [
        (path, match.group(1))
        for path, _, _, text in _texts(container, field)
        for match in PLACEHOLDER.finditer(text)
    ]
