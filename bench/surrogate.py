"""Could a surrogate fitted to the fine-tuning table stand in for it? A probe that says no.

Issue 13 offers two ways for a suggestion to meet the recorded table: the nearest recorded
configuration (``replay.TabularCurves``, what bench/search_peers.py plays) or a surrogate
fitted to the table. Nearest-neighbour keeps every curve real, at the price of a needle:
1 configuration of 360 is within 1% of the best mean. A surrogate would make the space
continuous, but only if its landscape can be trusted where searchers will go, which is
where it is lowest. This probe fits the natural candidate and checks exactly that.

The landscape: a Gaussian process over the configurations' mean log final eval loss
(Matern 5/2, one length per input, constant mean, Gaussian noise, fitted by marginal
likelihood). Numeric inputs are scaled as ``replay.normalize`` does; a categorical of
positive numbers (batch size) is placed on a log scale in [0, 1], any other is one-hot.

It reports the fit's cross-validated error against the seed noise, the landscape's minimum
over the space (a dense random sample plus the recorded points, the best few polished with
L-BFGS-B), what was actually trained nearest to that minimum, and how much of the space each
target would hold.

    python -m bench.surrogate          # writes bench/results/surrogate_probe.{json,md}
"""

from bench import cli  # noqa: I001  (first: it pins threads before numpy loads)

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bench import finetune_curves
from bench.replay import Params, TabularCurves, from_unit, normalize, random_point
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = (0.002, 0.01, 0.05)
JITTER = 1e-8
# log-space bounds of the hyperparameters (lengths are over inputs scaled to [0, 1])
LENGTH_BOUNDS = (math.log(0.02), math.log(50.0))
NOISE_BOUNDS = (math.log(1e-8), math.log(1.0))
MINIMUM_SAMPLES = 20000
MINIMUM_POLISHED = 12
PREDICT_CHUNK = 128


def encode(parameters: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> list[float]:
    """``normalize``'s numeric inputs, then each categorical: numeric choices as their
    position in [0, 1] (log scale: batch sizes 4, 8, 16 are evenly spaced), others one-hot."""
    out = normalize(parameters, params)
    for p in parameters:
        if p["type"] != "categorical":
            continue
        values = p["values"]
        if _ordinal(p):
            low, high = math.log(min(values)), math.log(max(values))
            out.append((math.log(params[p["name"]]) - low) / (high - low))
        else:
            out += [1.0 if params[p["name"]] == v else 0.0 for v in values]
    return out


def _ordinal(p: Mapping[str, Any]) -> bool:
    return all(isinstance(v, (int, float)) and v > 0 for v in p["values"])


def _matern52(a: np.ndarray, b: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The kernel matrix, and per input the squared scaled differences (for the gradient)."""
    sq = ((a[:, None, :] - b[None, :, :]) / lengths) ** 2
    r = np.sqrt(5.0 * sq.sum(-1))
    return (1.0 + r + r * r / 3.0) * np.exp(-r), sq


@dataclass
class GP:
    """A fitted process: predicts the mean log loss at encoded inputs."""

    x: np.ndarray
    y: np.ndarray
    lengths: np.ndarray
    amplitude: float
    noise: float
    alpha: np.ndarray = field(init=False)
    mean: float = field(init=False)

    def __post_init__(self) -> None:
        k, _ = _matern52(self.x, self.x, self.lengths)
        cov = self.amplitude * k + (self.noise + JITTER) * np.eye(len(self.x))
        self.mean = float(self.y.mean())
        self.alpha = cho_solve(cho_factor(cov), self.y - self.mean)

    def predict(self, z: np.ndarray) -> np.ndarray:
        # In chunks: a kernel block holds points x training points x inputs at once.
        z = np.atleast_2d(z)
        chunks = [z[i : i + PREDICT_CHUNK] for i in range(0, len(z), PREDICT_CHUNK)]
        k_alpha = [_matern52(c, self.x, self.lengths)[0] @ self.alpha for c in chunks]
        return self.mean + self.amplitude * np.concatenate(k_alpha)


def _nll(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood and its gradient in theta: log lengths, log
    amplitude, log noise."""
    lengths, amplitude, noise = np.exp(theta[:-2]), math.exp(theta[-2]), math.exp(theta[-1])
    k, sq = _matern52(x, x, lengths)
    cov = amplitude * k + (noise + JITTER) * np.eye(len(x))
    try:
        factor = cho_factor(cov)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros_like(theta)
    centred = y - y.mean()
    alpha = cho_solve(factor, centred)
    value = 0.5 * centred @ alpha + np.log(np.diag(factor[0])).sum()
    inner = cho_solve(factor, np.eye(len(x))) - np.outer(alpha, alpha)  # 2 dNLL/dK
    r = np.sqrt(5.0 * sq.sum(-1))
    dk_dlength = amplitude * (5.0 / 3.0) * (1.0 + r) * np.exp(-r)  # times sq[..., d]
    grad = [0.5 * np.sum(inner * dk_dlength * sq[:, :, d]) for d in range(x.shape[1])]
    grad += [0.5 * np.sum(inner * amplitude * k), 0.5 * noise * np.trace(inner)]
    return float(value), np.array(grad)


def fit(x: np.ndarray, y: np.ndarray) -> GP:
    """The process with the highest marginal likelihood (two starting lengths)."""
    var = float(np.var(y)) or 1.0
    bounds = [LENGTH_BOUNDS] * x.shape[1] + [
        (math.log(var) - 6.0, math.log(var) + 4.0),
        NOISE_BOUNDS,
    ]
    best = None
    for start in (0.0, math.log(0.3)):
        theta0 = np.r_[np.full(x.shape[1], start), math.log(var), math.log(var * 0.01)]
        result = minimize(_nll, theta0, args=(x, y), jac=True, bounds=bounds)
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    theta = best.x
    return GP(x, y, np.exp(theta[:-2]), math.exp(theta[-2]), math.exp(theta[-1]))


@dataclass
class Landscape:
    """The table's final mean log eval loss as a fitted Gaussian process over the space."""

    table: TabularCurves
    gp: GP = field(init=False)

    def __post_init__(self) -> None:
        x = self._encoded(self.table.configs())
        y = np.array([np.mean(np.log(finals)) for finals in self.table.finals_by_config()])
        self.gp = fit(x, y)

    @property
    def parameters(self) -> list[dict[str, Any]]:
        return self.table.parameters

    def _encoded(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return np.array([encode(self.parameters, p) for p in points])

    @property
    def lengths(self) -> dict[str, float]:
        """The fitted length per encoded input (short: the loss moves with that input)."""
        names = [p["name"] for p in self.parameters if p["type"] != "categorical"]
        for p in self.parameters:
            if p["type"] != "categorical":
                continue
            if _ordinal(p):
                names.append(p["name"])
            else:
                names += [f"{p['name']}={v}" for v in p["values"]]
        return dict(zip(names, (float(v) for v in self.gp.lengths), strict=True))

    def qualities(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The landscape's final eval loss at each point (noise-free), in one prediction."""
        return np.exp(self.gp.predict(self._encoded(points)))

    def quality(self, params: Mapping[str, Any]) -> float:
        return float(self.qualities([params])[0])

    def sample(self, rng: np.random.Generator) -> Params:
        """A uniform point of the space (log-uniform where log), integers rounded."""
        point = random_point(self.parameters, rng)
        for p in self.parameters:
            if p["type"] == "int":
                point[p["name"]] = round(point[p["name"]])
        return point

    def minimum(self) -> tuple[Params, float]:
        """The landscape's lowest final value: a dense sample and the recorded points, the
        best few polished with L-BFGS-B over the numeric parameters."""
        rng = np.random.default_rng(0)
        candidates = [self.sample(rng) for _ in range(MINIMUM_SAMPLES)]
        candidates += self.table.configs()
        values = self.qualities(candidates)
        order = np.argsort(values)
        best_params, best = dict(candidates[int(order[0])]), float(values[order[0]])
        for index in order[:MINIMUM_POLISHED]:
            params = self._polish(dict(candidates[int(index)]))
            value = self.quality(params)
            if value < best:
                best_params, best = params, value
        return best_params, best

    def _polish(self, start: Params) -> Params:
        numeric = [p for p in self.parameters if p["type"] != "categorical"]

        def at(u: np.ndarray, exact: bool) -> Params:
            decoded = {
                p["name"]: _decode(p, float(v), exact) for p, v in zip(numeric, u, strict=True)
            }
            return start | decoded

        result = minimize(
            lambda u: math.log(self.quality(at(u, True))),
            np.array(normalize(self.parameters, start)),
            bounds=[(0.0, 1.0)] * len(numeric),
            method="L-BFGS-B",
        )
        return at(result.x, False)

    def report(self, folds: int = 5) -> dict[str, Any]:
        """The fit's cross-validated error, its minimum against what was trained there, and
        the share of the space within each target of that minimum."""
        x, y = self.gp.x, self.gp.y
        order = np.random.default_rng(0).permutation(len(x))
        predicted = np.zeros(len(x))
        for fold in range(folds):
            test = order[fold::folds]
            train = np.setdiff1d(order, test)
            gp = GP(x[train], y[train], self.gp.lengths, self.gp.amplitude, self.gp.noise)
            predicted[test] = gp.predict(x[test])
        best_params, best = self.minimum()
        nearest = self.table.nearest(best_params, 0)
        rng = np.random.default_rng(1)
        sampled = self.qualities([self.sample(rng) for _ in range(MINIMUM_SAMPLES)])
        spread = [
            float(np.std(np.log(finals), ddof=1))
            for finals in self.table.finals_by_config()
            if len(finals) > 1
        ]
        return {
            "configs": len(x),
            "cv_rmse_log": float(np.sqrt(np.mean((predicted - y) ** 2))),
            "cv_spearman": _spearman(predicted, y),
            "seed_sd_log": float(np.median(spread)) if spread else None,
            "best_recorded_mean": self.table.best,
            "minimum": best,
            "minimum_params": best_params,
            "nearest_recorded_mean": self.table.quality(nearest.params),
            "nearest_recorded_params": nearest.params,
            "space_within": {
                str(pct): float(np.mean(sampled <= best * (1 + pct))) for pct in TARGETS
            },
            "lengths": self.lengths,
        }


def _decode(p: Mapping[str, Any], u: float, exact: bool = False) -> Any:
    """``from_unit``, an int parameter rounded unless ``exact`` (L-BFGS-B needs it smooth)."""
    value = from_unit(p, u)
    return round(value) if p["type"] == "int" and not exact else value


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def trustworthy(report: dict[str, Any]) -> bool:
    """Whether the landscape could stand in for the table: its error within twice the seed
    noise, and its minimum no further below the best recorded mean than that noise."""
    noise = report["seed_sd_log"] or 0.0
    below = math.log(report["best_recorded_mean"] / report["minimum"])
    return bool(report["cv_rmse_log"] <= 2 * noise and below <= 2 * noise)


def verdict(report: dict[str, Any]) -> str:
    gap = 1 - report["minimum"] / report["best_recorded_mean"]
    error = report["cv_rmse_log"] / (report["seed_sd_log"] or math.inf)
    if trustworthy(report):
        return (
            f"The fit's error is {error:.1f}x the seed noise and its minimum {gap:.1%} below the "
            "best recorded mean: within the noise, so the landscape could stand in for the "
            "table as a second replay problem."
        )
    return (
        f"The fit ranks the recorded configurations well, but its error is {error:.1f}x the "
        f"seed noise, and its minimum lies {gap:.1%} below the best recorded mean, where the "
        f"nearest trained configuration scored {report['nearest_recorded_mean']:.4f}. A "
        "searcher scored on this landscape would be rewarded for finding where the model "
        "extrapolates, not where fine-tuning works, so bench/search_peers.py plays the nearest "
        "recorded configuration (``replay.TabularCurves``), and its page says what that costs."
    )


def markdown(report: dict[str, Any]) -> str:
    def short(params: Mapping[str, Any]) -> str:
        return ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
        )

    within = ", ".join(f"{float(k):.1%}: {v:.2%}" for k, v in report["space_within"].items())
    lengths = ", ".join(f"{k} {v:.2g}" for k, v in report["lengths"].items())
    gap = report["minimum"] / report["best_recorded_mean"] - 1
    return f"""# A surrogate of the fine-tuning table: the probe (issue 13)

Generated by `python -m bench.surrogate` in {report["seconds"]} s. The table: {report["configs"]}
configurations of bench/data/finetune_curves.jsonl, scored on their mean log final eval loss
over their seeds. The landscape and how it was fitted: the module's docstring.

| figure | value |
|---|---|
| cross-validated error of the fit (5 folds, RMSE of log loss) | {report["cv_rmse_log"]:.4f} |
| cross-validated rank correlation (Spearman) | {report["cv_spearman"]:.3f} |
| seed noise of one configuration (median SD of log loss over its seeds) | {report["seed_sd_log"]:.4f} |
| best mean of a recorded configuration | {report["best_recorded_mean"]:.4f} |
| the landscape's minimum | {report["minimum"]:.4f} ({gap:+.1%} against the best recorded) |
| the recorded configuration nearest that minimum: its mean | {report["nearest_recorded_mean"]:.4f} |
| share of the space within 0.2%, 1%, 5% of the minimum | {within} |

- The minimum: {short(report["minimum_params"])}.
- The recorded configuration nearest it: {short(report["nearest_recorded_params"])}.
- Fitted lengths (inputs scaled to [0, 1]; long means the loss ignores that input): {lengths}.

## Verdict

{verdict(report)}
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.common_parser(__doc__, RESULTS, table=True)
    args = parser.parse_args(argv)
    if args.quick or args.seeds is not None:
        parser.error(
            "--quick, --seeds: the probe fits the whole table once; it has no sizes or seeds"
        )
    started = time.perf_counter()
    table = finetune_curves.load_problem(args.table)
    if table is None:
        parser.error(f"--table: no recorded runs in {args.table}")
    report = Landscape(table).report()
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(report)
    print(text)
    cli.write_report(args.out, "surrogate_probe", report, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
