"""How a trial's parameters reach its container: ${params.NAME} placeholders and KUBETUNE_PARAMS.

The one syntax of every placeholder: ${SCOPE.NAME} with SCOPE params (a parameter), trial
(name, number) or sweep (name).
"""

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kubetune.builders.errors import BuildError

PLACEHOLDER = re.compile(r"\$\{(params|trial|sweep)\.([^}]*)\}")
PARAMS = "params"


@dataclass(frozen=True)
class TrialNames:
    """What ${trial.name}, ${trial.number} and ${sweep.name} stand for in one trial."""

    sweep: str
    trial: str
    number: int

    def scope(self, scope: str) -> dict[str, str]:
        if scope == "trial":
            return {"name": self.trial, "number": str(self.number)}
        return {"name": self.sweep}


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


def substitute(
    text: str,
    params: Mapping[str, ParamValue],
    field: str,
    names: TrialNames | None = None,
) -> str:
    """Replace every placeholder; an unknown NAME is an error naming the field.

    Without `names` (a check with no trial yet) ${trial.*} and ${sweep.*} stay as written.
    """

    def replace(match: re.Match[str]) -> str:
        scope, name = match.group(1), match.group(2)
        if scope == PARAMS:
            if name not in params:
                raise BuildError(field, unknown_placeholder(name, params))
            return render_value(params[name])
        if names is None:
            return match.group(0)
        known = names.scope(scope)
        if name not in known:
            raise BuildError(
                field, f"${{{scope}.{name}}} is no placeholder (known: {', '.join(known)})"
            )
        return known[name]

    return PLACEHOLDER.sub(replace, text)


def substitute_tree(
    node: Any, params: Mapping[str, ParamValue], field: str, names: TrialNames | None
) -> Any:
    """A copy of `node` with placeholders replaced in every string value (keys stay)."""
    if isinstance(node, str):
        return substitute(node, params, field, names)
    if isinstance(node, dict):
        return {
            key: substitute_tree(value, params, f"{field}.{key}", names)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [
            substitute_tree(item, params, f"{field}[{index}]", names)
            for index, item in enumerate(node)
        ]
    return node


def tree_placeholders(node: Any, field: str) -> list[tuple[str, str]]:
    """(field path, NAME) of every ${params.NAME} in any string of `node`, in order."""
    if isinstance(node, str):
        return [(field, m.group(2)) for m in PLACEHOLDER.finditer(node) if m.group(1) == PARAMS]
    if isinstance(node, dict):
        return [
            found
            for key, value in node.items()
            for found in tree_placeholders(value, f"{field}.{key}")
        ]
    if isinstance(node, list):
        return [
            found
            for index, item in enumerate(node)
            for found in tree_placeholders(item, f"{field}[{index}]")
        ]
    return []


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
    container: dict[str, Any],
    params: Mapping[str, ParamValue],
    field: str,
    names: TrialNames | None = None,
) -> None:
    """Substitute in command, args and literal env values of one container, in place."""
    for path, holder, key, text in list(_texts(container, field)):
        holder[key] = substitute(text, params, path, names)


def placeholders(container: dict[str, Any], field: str) -> list[tuple[str, str]]:
    """(field path, NAME) of every ${params.NAME} in one container, in order."""
    return [
        (path, match.group(2))
        for path, _, _, text in _texts(container, field)
        for match in PLACEHOLDER.finditer(text)
        if match.group(1) == PARAMS
    ]
