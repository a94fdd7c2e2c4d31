"""How a trial's parameters reach its container: ${params.NAME} placeholders and KUBETUNE_PARAMS."""

import json
import re
from collections.abc import Mapping
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


def substitute(text: str, params: Mapping[str, ParamValue], field: str) -> str:
    """Replace every ${params.NAME}; an unknown NAME is an error naming the field."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            known = ", ".join(sorted(params)) or "none"
            raise BuildError(field, f"${{params.{name}}} names no parameter (known: {known})")
        return render_value(params[name])

    return PLACEHOLDER.sub(replace, text)


def substitute_container(
    container: dict[str, Any], params: Mapping[str, ParamValue], field: str
) -> None:
    """Substitute in command, args and literal env values of one container, in place."""
    for key in ("command", "args"):
        items = container.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            raise BuildError(f"{field}.{key}", "must be a list of strings")
        container[key] = [
            substitute(str(item), params, f"{field}.{key}[{index}]")
            for index, item in enumerate(items)
        ]
    for index, var in enumerate(container.get("env") or []):
        if isinstance(var, dict) and isinstance(var.get("value"), str):
            var["value"] = substitute(var["value"], params, f"{field}.env[{index}].value")
