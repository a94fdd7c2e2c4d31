"""The chart's ValidatingAdmissionPolicy evaluated with a real CEL engine (cel-python).

The API server's part is played here: matchConditions, then variables, then each validation
and, when one fails, its messageExpression. The `authorizer` library of Kubernetes CEL
(`authorizer.group('').resource('pods').namespace(ns).name(n).check('create').allowed()`)
is a test double answering from a table of grants, bound to the request's user as the real
one is. `join` is Kubernetes' strings-library function, which cel-python lacks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import celpy
from celpy import celtypes


@dataclass(frozen=True)
class Grant:
    """One RBAC-style permission; name "" means every name (a rule without resourceNames)."""

    user: str
    verb: str
    resource: str
    namespace: str
    name: str = ""
    group: str = ""


@dataclass
class GrantTable:
    grants: set[Grant] = field(default_factory=set)
    asked: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)

    def allowed(
        self, user: str, verb: str, group: str, resource: str, namespace: str, name: str
    ) -> bool:
        self.asked.append((user, verb, group, resource, namespace, name))
        wanted = Grant(user, verb, resource, namespace, name, group)
        return wanted in self.grants or replace(wanted, name="") in self.grants


@dataclass(frozen=True)
class _Check:
    """Authorizer, GroupCheck and ResourceCheck at once: the attributes gathered so far."""

    table: GrantTable
    user: str
    attrs: tuple[tuple[str, str], ...] = ()

    def with_(self, key: str, value: Any) -> _Check:
        return replace(self, attrs=(*self.attrs, (key, str(value))))


@dataclass(frozen=True)
class _Decision:
    allowed: bool


def _check(target: _Check, verb: Any) -> _Decision:
    attrs = dict(target.attrs)
    return _Decision(
        target.table.allowed(
            target.user,
            str(verb),
            attrs.get("group", ""),
            attrs.get("resource", ""),
            attrs.get("namespace", ""),
            attrs.get("name", ""),
        )
    )


def _join(items: Iterable[Any], separator: Any = "") -> celtypes.StringType:
    return celtypes.StringType(str(separator).join(str(i) for i in items))


FUNCTIONS: dict[str, Any] = {
    "group": lambda a, v: a.with_("group", v),
    "resource": lambda a, v: a.with_("resource", v),
    "subresource": lambda a, v: a.with_("subresource", v),
    "namespace": lambda a, v: a.with_("namespace", v),
    "name": lambda a, v: a.with_("name", v),
    "check": _check,
    "allowed": lambda d: celtypes.BoolType(d.allowed),
    "reason": lambda d: celtypes.StringType("" if d.allowed else "no RBAC grant"),
    "errored": lambda d: celtypes.BoolType(False),
    "join": _join,
}


@dataclass
class Verdict:
    applies: bool  # False: a matchCondition excluded the request
    refusals: list[str]  # messages of failed validations; empty: admitted

    @property
    def admitted(self) -> bool:
        return not self.refusals


def _eval(expression: str, activation: dict[str, Any]) -> Any:
    env = celpy.Environment()
    program = env.program(env.compile(expression), functions=FUNCTIONS)
    return program.evaluate(activation)


def admission_request(
    operation: str,
    user: str,
    namespace: str,
    obj: dict[str, Any],
    old: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "operation": operation,
        "namespace": namespace,
        "name": obj["metadata"]["name"],
        "userInfo": {"username": user},
        "object": obj,
        "oldObject": old,
    }


def evaluate(policy: dict[str, Any], request: dict[str, Any], table: GrantTable) -> Verdict:
    """What the API server does with `request` under `policy` (one binding, no params)."""
    spec = policy["spec"]
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(request["object"]),
        "oldObject": celpy.json_to_cel(request["oldObject"]),
        "request": celpy.json_to_cel({k: v for k, v in request.items() if "bject" not in k}),
        "authorizer": _Check(table, request["userInfo"]["username"]),
    }
    for condition in spec.get("matchConditions", []):
        matched = _eval(condition["expression"], activation)
        if not isinstance(matched, celtypes.BoolType):
            raise AssertionError(f"{condition['expression']!r} gave {matched!r}")
        if not matched:
            return Verdict(applies=False, refusals=[])
    variables: dict[celtypes.StringType, Any] = {}
    for variable in spec.get("variables", []):
        activation["variables"] = celtypes.MapType(variables)
        variables[celtypes.StringType(variable["name"])] = _eval(variable["expression"], activation)
    activation["variables"] = celtypes.MapType(variables)
    refusals = []
    for validation in spec["validations"]:
        passed = _eval(validation["expression"], activation)
        if not isinstance(passed, celtypes.BoolType):  # an evaluation error: tests must see it
            raise AssertionError(f"{validation['expression']!r} gave {passed!r}")
        if not passed:
            if "messageExpression" in validation:
                refusals.append(str(_eval(validation["messageExpression"], activation)))
            else:
                refusals.append(validation.get("message", validation["expression"]))
    return Verdict(applies=True, refusals=refusals)
