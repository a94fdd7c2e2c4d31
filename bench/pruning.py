"""Pruning that keeps the best: no pruning, today's ASHA, ASHA with forecasts, and peers.

Every arm plays the same problems, seeds and trial count through bench/replay.py's clock
(``workers`` slots, a trial holds its slot for its steps, compute in training steps):

- ``none``: SweepEngine, the default sampler ``auto``, earlyStopping none (the reference);
- ``asha``: SweepEngine, ``auto``, earlyStopping asha at the documented setting;
- ``asha-forecast-setting``: today's ASHA at the forecast arm's rungs (so a gain is not
  just other rungs);
- ``forecast``: SweepEngine, ``auto``, earlyStopping asha with ``forecast: true``;
- ``optuna-median``: Optuna TPESampler() + MedianPruner() at their defaults;
- ``ray-asha``: Ray Tune's ASHAScheduler semantics over random search (bench/peers.py).

Figures per problem, medians over seeds: the final value gap of the incumbent against no
pruning (its noise-free final loss on synthetic curves, its configuration's mean final
eval loss over the recorded seeds on the fine-tuning table) and the steps spent as a fraction of no pruning's.

    python -m bench.pruning                 # committed run (see the .md for seeds)
    python -m bench.pruning --quick         # smoke, seconds
    python -m bench.pruning --render        # redo the .md from the saved JSON

Writes bench/results/pruning.json and .md (or under --out).
"""

import json
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli, finetune_curves, peers  # cli first: it pins threads
from bench.problems import LearningCurve
from bench.replay import Params, ReplayProblem, Searcher, SyntheticCurves, TabularCurves, play
from optuna.pruners import MedianPruner, NopPruner
from optuna.samplers import RandomSampler, TPESampler

from kubetune.spec.auto_pruning import (
    AUTO_FIRST_RUNG_FRACTION,
    AUTO_PARALLELISM,
    AUTO_REDUCTION_FACTOR,
)

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_STEPS = 1 / 3
TARGET_GAP = 0.02


@dataclass(frozen=True)
class Setting:
    """earlyStopping rungs for one problem: today's documented one and the forecast one."""

    asha: dict[str, Any]
    forecast: dict[str, Any]


# 1000-step curves, an eval every 25 steps: the documented asha setting (minSteps 50, rf 4)
# and the forecast one, whose first rung has four evaluations (a forecast needs them).
CURVE_SETTING = Setting(
    asha={"name": "asha", "minSteps": 50, "reductionFactor": 4},
    forecast={"name": "asha", "minSteps": 100, "reductionFactor": 3, "forecast": True},
)
# The fine-tuning table: 40 steps, an eval every 5 (8 evaluations per run). Four evaluations
# come only at half the run, too late for a rung to save much, so the forecast arm's first
# rung (step 5, Ray's one-evaluation grace period) ranks by value and its second (step 20,
# four evaluations) by forecast. The table's curves keep their order early (Spearman 0.94
# between a run's loss at step 5 and its configuration's mean final over the 1080 runs), unlike curves-lr-coupled.
TABLE_SETTING = Setting(
    asha={"name": "asha", "minSteps": 5, "reductionFactor": 4},
    forecast={"name": "asha", "minSteps": 5, "reductionFactor": 4, "forecast": True},
)


@dataclass(frozen=True)
class Config:
    seeds: int
    trials: int
    workers: int
    compute_runs: float  # the equal-compute view's budget, in full-length runs
    # kubetune's arms share one sampler, so only the pruner differs between them: the default
    # auto, so the pruners are measured with the sampler users get. (This was TPE while auto's
    # GP made the bench an hour of CPU; with greenlet and one pinned thread, 10 seeds take
    # minutes.)
    algorithm: str = "auto"


FULL = Config(seeds=20, trials=60, workers=4, compute_runs=15.0)
QUICK = Config(seeds=1, trials=8, workers=2, compute_runs=3.0)
# Equal compute: maxTrials high enough that the budget, not the count, ends a run.
COMPUTE_TRIALS = 400
ARMS = ("none", "asha", "asha-forecast-setting", "forecast", "optuna-median", "ray-asha")


class Capped:
    """A searcher that starts at most ``trials`` trials (Optuna's ask never stops)."""

    def __init__(self, inner: Searcher, trials: int) -> None:
        self.inner = inner
        self.left = trials

    def ask(self) -> tuple[int, Params] | None:
        if self.left <= 0:
            return None
        self.left -= 1
        return self.inner.ask()

    def report(self, number: int, step: int, value: float, last: bool) -> bool:
        return self.inner.report(number, step, value, last)

    def complete(self, number: int, value: float, step: int) -> None:
        self.inner.complete(number, value, step)


def searcher(
    arm: str, problem: ReplayProblem, setting: Setting, seed: int, config: Config
) -> Searcher:
    name = f"{problem.name}-{seed}"
    if arm in ("none", "asha", "asha-forecast-setting", "forecast"):
        early = {
            "none": {"name": "none"},
            "asha": setting.asha,
            "asha-forecast-setting": {**setting.forecast, "forecast": False},
            "forecast": setting.forecast,
        }[arm]
        spec = peers.spec_for(
            problem, seed, config.workers, config.trials, early, algorithm=config.algorithm
        )
        return peers.KubetuneSearcher(spec, name)
    space = peers.space_for(problem)
    if arm == "optuna-median":
        return Capped(
            peers.OptunaSearcher(space, TPESampler(seed=seed), MedianPruner()), config.trials
        )
    if arm == "ray-asha":
        random = peers.OptunaSearcher(space, RandomSampler(seed=seed), NopPruner())
        ray = peers.RayAsha(random, max_t=max(1, problem.max_steps // problem.eval_every))
        return Capped(ray, config.trials)
    raise ValueError(f"unknown arm {arm!r}")


def problems(table: Path, quick: bool) -> list[tuple[ReplayProblem, Setting]]:
    found: list[tuple[ReplayProblem, Setting]] = [
        (SyntheticCurves("curves", LearningCurve()), CURVE_SETTING),
        (
            SyntheticCurves("curves-lr-coupled", LearningCurve(speedup=3.16, tau_at_optimum=150.0)),
            CURVE_SETTING,
        ),
    ]
    tabular = finetune_curves.load_problem(table)
    if tabular is not None and not quick:
        found.append((tabular, TABLE_SETTING))
    return found


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def study(
    problem: ReplayProblem,
    setting: Setting,
    config: Config,
    arms: Sequence[str],
    budget: float = math.inf,
) -> dict[str, Any]:
    """Each arm over the seeds: ``config.trials`` trials, or until ``budget`` steps."""
    results: dict[str, Any] = {}
    for arm in arms:
        runs = []
        for seed in range(config.seeds):
            trace = play(
                problem,
                searcher(arm, problem, setting, seed, config),
                config.workers,
                budget,
                seed,
            )
            quality = trace.quality[-1] if trace.quality else math.inf
            runs.append(
                {
                    "steps": trace.spent,
                    "quality": quality,
                    "trials": trace.trials,
                    "completed": trace.completed,
                }
            )
        results[arm] = {
            "runs": runs,
            "median_steps": median([r["steps"] for r in runs]),
            "median_quality": median([r["quality"] for r in runs]),
            "median_completed": median([r["completed"] for r in runs]),
        }
    reference = results["none"]
    for row in results.values():
        row["steps_vs_none"] = row["median_steps"] / reference["median_steps"]
        row["gap_vs_none"] = row["median_quality"] / reference["median_quality"] - 1
        # Per seed too: a median of ratios says how often an arm loses the best.
        gaps = [
            r["quality"] / n["quality"] - 1
            for r, n in zip(row["runs"], reference["runs"], strict=True)
        ]
        row["median_seed_gap"] = median(gaps)
        row["worst_seed_gap"] = max(gaps)
    return {
        "max_steps": problem.max_steps,
        "eval_every": problem.eval_every,
        "setting": {"asha": setting.asha, "forecast": setting.forecast},
        "arms": results,
    }


def markdown(report: dict[str, Any]) -> str:
    config = report["config"]
    sampler = config.get("algorithm", "auto")
    lines = [
        "# Pruning that keeps the best",
        "",
        f"{config['seeds']} seeds (0..{config['seeds'] - 1}); {config['trials']} trials per "
        f"arm, {config['workers']} at once, on bench/replay.py's clock. Generated by "
        f"`python -m bench.pruning` in {report['wall_seconds']} s. Gap: the incumbent's "
        "final value (noise-free final loss on synthetic curves, the configuration's mean "
        "final eval loss over its seeds on the table) against no pruning's, median over seeds; steps: median steps spent "
        "over no pruning's. Lower is better for both.",
        "",
        f"Arms (kubetune's all with the sampler `{sampler}`): `none` (no pruning), `asha` "
        "(today's ASHA, documented setting), `asha-forecast-setting` (today's ASHA at the "
        "forecast arm's rungs), `forecast` (ASHA ranking by forecast final values), "
        "`optuna-median` (Optuna TPESampler() + MedianPruner()), `ray-asha` (Ray Tune "
        "ASHAScheduler() semantics over random search, bench/peers.py). Peers use their own "
        "samplers: their gap mixes sampler and pruner.",
        "",
        "The fine-tuning table (`finetune`, when present) maps each suggestion to the nearest "
        f"recorded run, so a model-based sampler's trials (kubetune's `{sampler}`, Optuna's "
        "TPE) can replay the same run and tie at a rung (ASHA keeps ties): that raises the "
        "steps of those arms there. It has 8 evaluations per run, too few for a forecast "
        "before 1/3 of the run (a forecast needs 4): its forecast arm's first rung (step 5) "
        "ranks by value and its second (step 20) by forecast.",
        "",
    ]
    for name, result in report["problems"].items():
        setting = result["setting"]
        recorded = result.get("recorded_runs")
        lines += [
            f"## {name} ({result['max_steps']} steps, an evaluation every "
            f"{result['eval_every']}"
            + (f"; a table of {recorded} recorded runs" if recorded else "")
            + ")",
            "",
            f"asha: `{json.dumps(setting['asha'])}`; forecast: `{json.dumps(setting['forecast'])}`",
            "",
            "| arm | steps / none | gap vs none | median per-seed gap | worst seed | completed "
            "trials | final value |",
            "|---|---|---|---|---|---|---|",
        ]
        for arm, row in result["arms"].items():
            lines.append(
                f"| {arm} | {row['steps_vs_none']:.3f} | {100 * row['gap_vs_none']:+.2f}% | "
                f"{100 * row['median_seed_gap']:+.2f}% | {100 * row['worst_seed_gap']:+.2f}% | "
                f"{row['median_completed']:.0f} | {row['median_quality']:.4f} |"
            )
        lines.append("")
    lines += [
        f"## Same compute ({config['compute_runs']:g} full runs' worth of steps per problem)",
        "",
        "Every arm runs until it has spent the budget (pruning arms start more trials). Gap: the "
        "incumbent's final value against no pruning's at that budget, median over seeds.",
        "",
        "| problem | " + " | ".join(ARMS) + " |",
        "|---|" + "---|" * len(ARMS),
    ]
    for name, result in report["problems"].items():
        arms = result["equal_compute"]["arms"]
        lines.append(
            f"| {name} | "
            + " | ".join(
                f"{100 * arms[a]['gap_vs_none']:+.2f}% ({arms[a]['median_completed']:.0f} done)"
                for a in ARMS
            )
            + " |"
        )
    gaps = {
        name: result["equal_compute"]["arms"]["forecast"]["gap_vs_none"]
        for name, result in report["problems"].items()
    }
    plain = {
        name: result["equal_compute"]["arms"]["asha"]["gap_vs_none"]
        for name, result in report["problems"].items()
    }
    ray = {
        name: result["equal_compute"]["arms"]["ray-asha"]["gap_vs_none"]
        for name, result in report["problems"].items()
    }
    worst_plain = max(plain, key=lambda n: plain[n])
    lines += [
        "",
        "## The default: earlyStopping auto",
        "",
        "At equal compute the forecast arm's incumbent is "
        + ", ".join(f"{100 * g:+.2f}% ({n})" for n, g in gaps.items())
        + " against no pruning's"
        + (": a small gain, no loss." if max(gaps.values()) <= 0 else ".")
        + " Plain ASHA is "
        + f"{100 * plain[worst_plain]:+.2f}% on {worst_plain} (Ray Tune's ASHA recipe "
        + f"{100 * ray[worst_plain]:+.2f}%). Whether to prune at all depends on how many "
        "trials run at once: one at a time, the default sampler learns more from finished "
        "trials than pruning its trials buys; with many at once it gets few rounds of them, and the "
        "breadth pruning buys wins (bench/results/search_peers.md). So the default, "
        f"`earlyStopping: auto`, is ASHA with forecasts (reduction factor {AUTO_REDUCTION_FACTOR}, "
        f"the first rung at 1/{round(1 / AUTO_FIRST_RUNG_FRACTION)} of the run) from "
        f"{AUTO_PARALLELISM} trials at once, and on the startup trials alone below that, so "
        "the sampler's own trials run to the end (spec/auto_pruning.py).",
    ]
    lines += ["", "## Targets (forecast arm: gap <= 2% and steps <= 1/3 of no pruning)", ""]
    for name, met in report["targets_met"].items():
        lines.append(f"- {name}: {'met' if met else 'NOT met'}")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.common_parser(__doc__, RESULTS, table=True, render=True)
    args = parser.parse_args(argv)
    if args.render:
        saved = json.loads((args.out / "pruning.json").read_text())
        (args.out / "pruning.md").write_text(markdown(saved))
        return 0
    config = QUICK if args.quick else FULL
    config = replace(config, seeds=cli.seeds(parser, args, config.seeds))
    started = time.perf_counter()
    report: dict[str, Any] = {"config": config.__dict__, "problems": {}}
    for problem, setting in problems(args.table, args.quick):
        result = study(problem, setting, config, ARMS)
        report["problems"][problem.name] = result
        budget = config.compute_runs * problem.max_steps
        many = replace(config, trials=COMPUTE_TRIALS)
        result["equal_compute"] = {
            "budget_steps": budget,
            "arms": study(problem, setting, many, ARMS, budget)["arms"],
        }
        if isinstance(problem, TabularCurves):
            result["recorded_runs"] = len(problem.runs)
        for arm, row in result["arms"].items():
            print(
                f"  {problem.name:17s} {arm:22s} steps {row['steps_vs_none']:.3f}  "
                f"gap {100 * row['gap_vs_none']:+.2f}%",
                flush=True,
            )
    report["targets_met"] = {
        f"{name}: forecast gap <= 2% and steps <= 1/3": (
            result["arms"]["forecast"]["gap_vs_none"] <= TARGET_GAP
            and result["arms"]["forecast"]["steps_vs_none"] <= TARGET_STEPS
        )
        for name, result in report["problems"].items()
    }
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(report)
    print(text)
    cli.write_report(args.out, "pruning", report, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
