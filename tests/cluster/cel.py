"""CEL validation rules (`x-kubernetes-validations`) through the `celpy` package when present.

Without `celpy` a schema that carries rules is rejected loudly instead of accepting objects
the real API server would refuse.
"""

from __future__ import annotations

from typing import Any

from .errors import cause

try:  # pragma: no cover - depends on the environment
    import celpy  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    celpy = None


def available() -> bool:
    return celpy is not None


def check_rules(value: Any, rules: list[dict[str, Any]], path: str) -> list[dict[str, str]]:
    if celpy is None:
        return [
            cause(
                path,
                "Internal error: the test cluster cannot evaluate x-kubernetes-validations "
                "(install cel-python)",
                "InternalError",
            )
        ]
    env = celpy.Environment()
    causes = []
    for rule in rules:
        program = env.program(env.compile(rule["rule"]))
        result = program.evaluate({"self": celpy.json_to_cel(value)})
        if not bool(result):
            message = rule.get("message") or f"failed rule: {rule['rule']}"
            field = path
            if rule.get("fieldPath"):
                field = f"{path}{rule['fieldPath']}"
            causes.append(cause(field, f'Invalid value: "object": {message}'))
    return causes
