"""Kubernetes-style durations such as "90s", "30m", "2h", "1h30m"."""

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"


def parse_duration(text: str) -> float:
    """Seconds in a duration string; ValueError names the accepted form."""
    stripped = text.strip()
    if not re.fullmatch(DURATION_PATTERN, stripped):
        raise ValueError(f"must be a duration such as 90s, 30m, 2h or 1h30m, got {text!r}")
    return sum(float(num) * _UNIT_SECONDS[unit] for num, unit in _PART.findall(stripped))
