"""What the progress view shows: one row per trial, counts and the best so far (plain data)."""

from dataclasses import dataclass, field

from kubetune.builders.substitute import ParamValue, render_value


@dataclass
class TrialRow:
    number: int
    name: str
    params: dict[str, ParamValue]
    state: str = "Running"
    step: int | None = None
    value: float | None = None  # latest objective value, final once the trial ended
    note: str = ""
    elapsed: float = 0.0


@dataclass
class Board:
    sweep: str
    metric: str
    direction: str
    max_trials: int
    rows: dict[int, TrialRow] = field(default_factory=dict)
    best_trial: str | None = None
    best_value: float | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def row(self, number: int) -> TrialRow | None:
        return self.rows.get(number)


def format_params(params: dict[str, ParamValue], width: int = 60) -> str:
    text = " ".join(f"{k}={_short(v)}" for k, v in params.items())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _short(value: ParamValue) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.3g}"
    return render_value(value)
