"""Reading the PromQL in dashboards and alert rules: panels, variables, vector selectors.

Prometheus 2.42 has no parse endpoint, so vector selectors are found with a small
tokenizer that knows PromQL's keywords, aggregations and grouping clauses. The live
test catches anything it misreads: every expression also runs against a real server.
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Words that are never metric names when they stand where a selector could.
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "start", "end"}
)
_AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
# These take a parenthesised list of label names, not an expression.
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# A number or a duration (5m, 1h30m): digits and whatever letters follow them.
_NUMBER = re.compile(r"(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)[a-zA-Z0-9]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*(?P<label>\w+)\s*\)\s*$", re.S)


@dataclass(frozen=True)
class Selector:
    """One vector selector: a metric name and its matchers as written (may be empty)."""

    metric: str
    matchers: str

    def __str__(self) -> str:
        return f"{self.metric}{{{self.matchers}}}" if self.matchers else self.metric


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" else 1
    return i + 1


def _matching(expr: str, i: int, opening: str, closing: str) -> int:
    """Index just past the bracket that closes the one at i, stepping over strings."""
    depth = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
            continue
        if char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {opening!r} in PromQL: {expr!r}")


def _next_char(expr: str, i: int) -> tuple[int, str]:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i, expr[i] if i < len(expr) else ""


def vector_selectors(expr: str) -> list[Selector]:
    """Every vector selector in a PromQL expression, in order."""
    found: list[Selector] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char in "\"'`":
            i = _skip_string(expr, i)
        elif char == "[":  # range or subquery duration: no selectors inside
            i = _matching(expr, i, "[", "]")
        elif char == "{":  # a selector without a metric name
            end = _matching(expr, i, "{", "}")
            found.append(Selector("", expr[i + 1 : end - 1].strip()))
            i = end
        elif (number := _NUMBER.match(expr, i)) and (char.isdigit() or char == "."):
            i = number.end()
        elif ident := _IDENT.match(expr, i):
            word = ident.group()
            j, following = _next_char(expr, ident.end())
            if word in _LABEL_LISTS and following == "(":
                i = _matching(expr, j, "(", ")")
            elif word in _KEYWORDS or word in _AGGREGATIONS or following == "(":
                i = ident.end()
            elif following == "{":
                end = _matching(expr, j, "{", "}")
                found.append(Selector(word, expr[j + 1 : end - 1].strip()))
                i = end
            else:
                found.append(Selector(word, ""))
                i = ident.end()
        else:
            i += 1
    return found


def metric_names(expr: str) -> set[str]:
    return {selector.metric for selector in vector_selectors(expr) if selector.metric}


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """Replace Grafana's $name and ${name} forms; longest names first ($__range_s before $__range)."""
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name])
        expr = expr.replace("$" + name, variables[name])
    return expr


def iter_panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool

    @property
    def label(self) -> str:
        return f"{self.dashboard} / {self.panel} [{self.ref_id}]"


def panel_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    """The PromQL target of every panel (rows have none)."""
    queries = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            queries.append(
                PanelQuery(
                    dashboard=str(dashboard["title"]),
                    panel=str(panel["title"]),
                    ref_id=str(target["refId"]),
                    expr=str(target["expr"]),
                    instant=bool(target.get("instant")) and not target.get("range", False),
                )
            )
    return queries


def variable_queries(dashboard: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Query variables as name -> (series selector, label) from `label_values(sel, label)`."""
    variables: dict[str, tuple[str, str]] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        definition = variable["query"]["query"] if isinstance(variable["query"], dict) else ""
        match = _LABEL_VALUES.match(definition or variable.get("definition", ""))
        if match is None:
            raise ValueError(f"variable {variable['name']}: expected label_values(selector, label)")
        variables[variable["name"]] = (match["selector"].strip(), match["label"])
    return variables
