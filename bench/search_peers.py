"""kubetune's default search against what users would use instead, side by side.

Every searcher in bench/peers.py plays every problem through bench/replay.py's clock at
parallelism 1 and 8, over the same seeds. Two figures per problem:

- compute to reach within 1% (and 0.2%) of the problem's best: the incumbent's quality q
  with (q - best) <= pct * |best|; compute in trials (analytic) or training steps (curves);
  also within 5%, because on the fine-tuning table 1% holds one configuration of 360 (the
  table's note in the report gives the counts and the seed noise);
- regret at a fixed compute budget: (q - best) / |best| of the incumbent then.

Each table gives the ratio of kubetune's default to the best peer (below 1: we win).

    python -m bench.search_peers --jobs 2   # full: 40 seeds, 60 on the table (~2 h on 2 cores)
    python -m bench.search_peers --seeds 5 --slow-seeds 3   # the committed reduced run (~9 min)
    python -m bench.search_peers --quick             # smoke, seconds
    python -m bench.search_peers --render            # redo tables from the saved JSON
    python -m bench.search_peers --problems finetune --table PATH   # redo some rows only

With --problems, rows of the other problems are kept from the JSON already in --out (run
with the same settings), so a slow table can be replayed later than the rest.

Writes bench/results/search_peers.json and .md (or under --out).
"""

import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing import get_context
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli, finetune_curves, peers  # cli first: it pins threads
from bench.problems import BRANIN, HARTMANN6, LearningCurve
from bench.replay import AnalyticProblem, ReplayProblem, SyntheticCurves, TabularCurves, play
from scipy.stats import mannwhitneyu

RESULTS = Path(__file__).resolve().parent / "results"
# Within 1% and 0.2% of the best, as issue 13 asks; 5% as well, because on the fine-tuning
# table a single configuration lies within 1%, closer than its own seeds agree.
TARGETS = (0.01, 0.002, 0.05)
# A difference between kubetune and the best peer counts as shown below this one-sided
# p-value (Mann-Whitney U over the seeds' regrets).
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Config:
    seeds: int
    parallelism: tuple[int, ...]
    analytic_trials: int  # compute budget on analytic problems
    curve_runs: float  # compute budget on curve problems, in full-length runs
    searchers: tuple[str, ...]
    slow_seeds: int | None = None  # seeds for peers.SLOW searchers (None: all of them)
    table_seeds: int | None = None  # seeds on recorded tables (None: seeds)


# The table's regrets are discrete: the incumbent is one of a few configurations, so a
# 20-seed median jumps between their levels. Ray Tune's recipe at parallelism 8 had a median
# regret of 0.0358 on seeds 0..19 and 0.0476 on seeds 40..99 (7/20 and 11/60 seeds at the
# best configuration); the table's rows get enough seeds for that to settle.
TABLE_SEEDS = 60
# The other rows: at 20 seeds, each row where the default's median was above the best
# peer's levelled or reversed on 40 other seeds (bench/results/seed_luck_probe.md); 40 is
# what fits beside the table's 60 in a run of a few hours on 2 cores.
FULL_SEEDS = 40
FULL = Config(FULL_SEEDS, (1, 8), 100, 30.0, tuple(peers.SEARCHERS), table_seeds=TABLE_SEEDS)
QUICK = Config(1, (1, 4), 16, 4.0, tuple(peers.SEARCHERS))


PROBLEM_NAMES = ("branin", "hartmann6", "curves", "curves-lr-coupled", "finetune")


def problems(table: Path, quick: bool) -> list[ReplayProblem]:
    found: list[ReplayProblem] = [
        AnalyticProblem(BRANIN),
        AnalyticProblem(HARTMANN6),
        SyntheticCurves("curves", LearningCurve()),
        SyntheticCurves("curves-lr-coupled", LearningCurve(speedup=3.16, tau_at_optimum=150.0)),
    ]
    if quick:
        found = [found[0], found[2]]
    tabular = finetune_curves.load_problem(table)
    if tabular is not None:
        found.append(tabular)
    return found


def tabular_names(found: Sequence[ReplayProblem]) -> set[str]:
    return {p.name for p in found if isinstance(p, TabularCurves)}


def budget_of(problem: ReplayProblem, config: Config) -> float:
    if problem.unit == "trials":
        return float(config.analytic_trials)
    return config.curve_runs * problem.max_steps


def relative_regret(quality: float, best: float) -> float:
    return (quality - best) / abs(best) if math.isfinite(quality) else math.inf


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Outcome:
    """What one seed of one arm ended with: all the report reads of its trace."""

    regret: float
    reach: tuple[float, ...]  # compute to each of TARGETS (inf: never)
    trials: int
    pruned: int


# The problems play_seed plays, by name: study() adds its own, and a --jobs process loads
# them all once (load_problems).
_PROBLEMS: dict[str, ReplayProblem] = {}


def load_problems(table: Path, quick: bool) -> None:
    """A --jobs process's problems: analytic ones hold lambdas, which do not pickle, so
    each process builds its own."""
    _PROBLEMS.update((p.name, p) for p in problems(table, quick))


def seed_pool(jobs: int, table: Path, quick: bool) -> ProcessPoolExecutor:
    """Processes that play seeds. Spawned, not forked: a fork of a process with threads
    (a test runner's, torch's) can inherit a held lock and hang."""
    return ProcessPoolExecutor(
        jobs, mp_context=get_context("spawn"), initializer=load_problems, initargs=(table, quick)
    )


def play_seed(problem_name: str, name: str, seed: int, workers: int, budget: float) -> Outcome:
    problem = _PROBLEMS[problem_name]
    factory = peers.SEARCHERS[name][0]
    trace = play(problem, factory(problem, seed, workers, budget), workers, budget, seed)
    return Outcome(
        relative_regret(trace.quality_at(budget), problem.best),
        tuple(trace.compute_to(problem.best + pct * abs(problem.best)) for pct in TARGETS),
        trace.trials,
        trace.pruned,
    )


def seeds_for(problem: ReplayProblem, name: str, config: Config) -> int:
    seeds = config.seeds
    if isinstance(problem, TabularCurves) and config.table_seeds is not None:
        seeds = config.table_seeds
    if name in peers.SLOW and config.slow_seeds is not None:
        seeds = min(seeds, config.slow_seeds)
    return seeds


def study(
    problem: ReplayProblem,
    config: Config,
    workers: int,
    log: Callable[[str], None],
    pool: ProcessPoolExecutor | None = None,
) -> dict[str, Any]:
    """Every searcher on ``problem``; seeds play in ``pool`` when given (seed_pool). Seeds
    are independent and each plays from its own seed, so a pool changes the wall time only."""
    budget = budget_of(problem, config)
    arms: dict[str, Any] = {}
    _PROBLEMS[problem.name] = problem
    for name in config.searchers:
        _, _, pruner_only = peers.SEARCHERS[name]
        if problem.unit == "trials" and pruner_only:
            continue  # a one-evaluation run gives a pruner nothing to act on
        seeds = seeds_for(problem, name, config)
        started = time.perf_counter()
        one = partial(play_seed, problem.name, name, workers=workers, budget=budget)
        outcomes = list(pool.map(one, range(seeds)) if pool else map(one, range(seeds)))
        arm = arms[name] = arm_figures(outcomes, time.perf_counter() - started)
        log(
            f"  {problem.name:18s} p{workers} {name:18s} regret "
            f"{median([o.regret for o in outcomes]):9.5f} to1% {arm['median_to_0.01']} "
            f"trials {arm['median_trials']:.0f} ({arm['seconds']}s)"
        )
    return {"budget": budget, "unit": problem.unit, "best": problem.best, "arms": arms}


def arm_figures(outcomes: Sequence[Outcome], seconds: float) -> dict[str, Any]:
    regret = [o.regret for o in outcomes]
    arm: dict[str, Any] = {
        "seeds": len(outcomes),
        "regret": [finite(r) for r in regret],
        "median_regret": finite(median(regret)),
        "median_trials": median([o.trials for o in outcomes]),
        "median_pruned": median([o.pruned for o in outcomes]),
        "seconds": round(seconds, 1),
    }
    for i, pct in enumerate(TARGETS):
        reach = [o.reach[i] for o in outcomes]
        arm[f"to_{pct}"] = [finite(r) for r in reach]
        arm[f"median_to_{pct}"] = finite(median(reach))
        arm[f"reached_{pct}"] = sum(math.isfinite(r) for r in reach)
    return arm


def versus(arms: dict[str, Any], key: str) -> dict[str, Any]:
    """kubetune's median against the best peer's (lower is better for both figures).

    ratio: ours / peer; 0 when only we got there, None when neither did or when the peer
    is at exactly 0 and we are not (shown as `inf`: a ratio to zero says nothing more).
    """
    rivals = {
        n: math.inf if a[key] is None else a[key]
        for n, a in arms.items()
        if n != peers.OURS and n not in peers.INFORMATIONAL
    }

    # Ties (often: nobody reached the target in the median seed) go to the peer that
    # reached it in more seeds, then to the lower median regret.
    def rank(name: str) -> tuple[float, float, float]:
        arm = arms[name]
        reached = arm.get(key.replace("median_to_", "reached_"), 0) if "_to_" in key else 0
        regret = arm.get("median_regret")
        return (
            rivals[name],
            -float(reached),
            math.inf if regret is None else regret,
        )

    best_peer = min(rivals, key=rank)
    theirs = rivals[best_peer]
    ours = arms[peers.OURS][key]
    mine = math.inf if ours is None else ours
    ratio: float | None
    if mine == theirs:
        ratio = None if math.isinf(mine) else 1.0
    elif math.isinf(theirs):
        ratio = 0.0
    elif math.isinf(mine) or theirs == 0:
        ratio = math.inf
    else:
        ratio = mine / theirs
    return {
        "ours": ours,
        "best_peer": best_peer,
        "peer": finite(theirs),
        "ratio": None if ratio is None or math.isinf(ratio) else ratio,
        "verdict": verdict(mine, theirs),
    }


def compare(row: dict[str, Any]) -> dict[str, Any]:
    """The row with kubetune against the best peer on each figure."""
    for pct in TARGETS:
        row[f"to_{pct}"] = versus(row["arms"], f"median_to_{pct}")
    row["regret"] = versus(row["arms"], "median_regret")
    peer = row["regret"]["best_peer"]
    row["regret"] |= significance(row["arms"][peers.OURS]["regret"], row["arms"][peer]["regret"])
    return row


def significance(ours: Sequence[float | None], theirs: Sequence[float | None]) -> dict[str, Any]:
    """Whether the seeds show a real difference, not one a few seeds' luck makes.

    One-sided Mann-Whitney U tests over the per-seed regrets (None, no finished trial,
    ranks worst), each way. A median ratio flips with one seed where regrets are bimodal
    (Hartmann6's local optimum) or discrete (the table's recorded runs); the test asks
    whether one arm's seeds tend to end lower than the other's.
    """
    mine = [math.inf if r is None else r for r in ours]
    other = [math.inf if r is None else r for r in theirs]
    worse = float(mannwhitneyu(mine, other, alternative="greater").pvalue)
    better = float(mannwhitneyu(mine, other, alternative="less").pvalue)
    if worse < SIGNIFICANCE:
        shown = "PEER BETTER"
    elif better < SIGNIFICANCE:
        shown = "ours better"
    else:
        shown = "no difference shown"
    return {"p_worse": worse, "p_better": better, "significant": shown}


def verdict(mine: float, theirs: float) -> str:
    if mine < theirs:
        return "ours better"
    if mine > theirs:
        return "PEER BETTER"
    return "tie" if math.isfinite(mine) else "neither reached"


def mean_regret(arm: dict[str, Any]) -> float | None:
    """The mean of an arm's per-seed regrets (None when no seed has a finite one)."""
    values = [r for r in arm["regret"] if r is not None]
    return statistics.fmean(values) if values else None


def fmt(value: float | None, spec: str = ".3g") -> str:
    return "never" if value is None else format(value, spec)


def percent(pct: float) -> str:
    return f"{pct * 100:g}%"


def reached(arm: dict[str, Any], pct: float) -> str:
    return f"{arm[f'reached_{pct}']}/{arm['seeds']}"


def caveats(report: dict[str, Any], config: Config) -> list[str]:
    lines = [
        "Read with care: the best peer is picked per row after the fact among "
        f"{len([n for n in config.searchers if n != peers.OURS and n not in peers.INFORMATIONAL])}"
        " peers, which flatters the peers at low seed counts; medians are over seeds, "
        "`never` when the median seed did not get there.",
    ]
    if config.slow_seeds is not None and config.slow_seeds < config.seeds:
        slow = ", ".join(sorted(peers.SLOW))
        lines.append(f"{slow} ran {config.slow_seeds} seeds only (seconds per ask here).")
    if config.table_seeds is not None and config.table_seeds != config.seeds:
        lines.append(
            f"Rows of recorded tables ran {config.table_seeds} seeds: there the incumbent is "
            "one of a few configurations, its regret takes a few discrete levels, and a "
            f"{config.seeds}-seed median jumps between them."
        )
    for name, table in report.get("tables", {}).items():
        lines.append(
            f"`{name}` is a table of {table['runs']} recorded runs of {table['configs']} "
            f"configurations ({table['max_steps']} steps): "
            + (
                "too few for the search to matter; it proves the plumbing only."
                if table["configs"] < 50
                else "suggestions snap to the nearest recorded configuration (a surrogate "
                "fitted to the table was probed instead and invents an optimum where nothing "
                "was trained: surrogate_probe.md)."
            )
            + seeds_note(table)
            + needle_note(table)
        )
    return [" ".join(lines), ""]


def needle(table: TabularCurves) -> dict[str, Any]:
    """How many configurations each target admits, and how far a configuration's own seeds
    spread (median over the replicated configurations of the sample standard deviation of
    their final values over their mean): a target narrower than that is found by luck."""
    means = table.means()
    spreads = [
        statistics.stdev(finals) / abs(statistics.fmean(finals))
        for finals in table.finals_by_config()
        if len(finals) > 1
    ]
    return {
        "within": {
            str(pct): sum(m - table.best <= pct * abs(table.best) for m in means) for pct in TARGETS
        },
        "seed_spread": median(spreads) if spreads else None,
    }


def needle_note(table: dict[str, Any]) -> str:
    within, spread = table.get("within"), table.get("seed_spread")
    if not within:
        return ""
    counts = ", ".join(f"{within[str(pct)]} within {percent(pct)}" for pct in TARGETS)
    text = f" Of its configurations, {counts} of the best mean"
    if spread is not None:
        text += (
            f"; a configuration's seeds spread by a median standard deviation of "
            f"{percent(round(spread, 4))} of its mean: within a target narrower than "
            "that, a searcher must find the few configurations there from one-seed curves "
            "that cannot tell them from their neighbours"
        )
    return text + "."


def seeds_note(table: dict[str, Any]) -> str:
    """How many seeds the configurations were scored over (tables before this said none)."""
    seeds = sorted(set(table.get("seeds", [])))
    if not seeds:
        return ""
    if len(seeds) == 1:
        count = f"{seeds[0]} seed" + ("s" if seeds[0] > 1 else "")
        return f" Every configuration was recorded with {count} and scored on its mean."
    return (
        f" Configurations were recorded with {seeds[0]} to {seeds[-1]} seeds and scored on "
        "their mean: unequal counts favour the configurations with fewer (their means spread "
        "more)."
    )


def ratio_text(v: dict[str, Any]) -> str:
    if v["ratio"] is not None:
        text = f"{v['ratio']:.2f}"
    else:
        text = "n/a" if v["verdict"] == "neither reached" else "inf"
    return text if v["verdict"] != "PEER BETTER" else f"**{text}** (peer better)"


def summary(report: dict[str, Any]) -> list[str]:
    """Counts of who won, so the tables below cannot be skimmed into a wrong headline."""
    lines = ["## Summary", ""]
    figures = [(f"to_{pct}", f"compute to {percent(pct)}") for pct in TARGETS]
    for key, label in [*figures, ("regret", "regret at budget")]:
        verdicts = [row[key]["verdict"] for row in report["rows"]]
        winners: dict[str, int] = {}
        for row in report["rows"]:
            if row[key]["verdict"] == "PEER BETTER":
                winners[row[key]["best_peer"]] = winners.get(row[key]["best_peer"], 0) + 1
        beaten_by = ", ".join(f"{n} x{c}" for n, c in sorted(winners.items(), key=lambda x: -x[1]))
        lines.append(
            f"- {label}: kubetune better in {verdicts.count('ours better')}, tied in "
            f"{verdicts.count('tie')}, worse in {verdicts.count('PEER BETTER')}"
            f"{f' (best peer then: {beaten_by})' if beaten_by else ''}, neither reached in "
            f"{verdicts.count('neither reached')} of {len(verdicts)} problem x parallelism rows"
        )
    shown = [row["regret"]["significant"] for row in report["rows"]]
    lines.append(
        f"- regret at budget, differences the seeds show (one-sided Mann-Whitney U, "
        f"p < {SIGNIFICANCE}): kubetune better in {shown.count('ours better')}, worse in "
        f"{shown.count('PEER BETTER')}, no difference shown in "
        f"{shown.count('no difference shown')} of {len(shown)} rows"
    )
    lines.append("")
    return lines


def markdown(report: dict[str, Any], config: Config) -> str:
    counts = sorted({arm["seeds"] for row in report["rows"] for arm in row["arms"].values()})
    seeds = (
        f"{counts[0]} seeds"
        if len(counts) == 1
        else f"{'/'.join(map(str, counts))} seeds (per arm: see the last table)"
    )
    lines = [
        "# kubetune's default search against its peers",
        "",
        f"{seeds}; parallelism {', '.join(map(str, config.parallelism))}; "
        f"budgets: {config.analytic_trials} trials (analytic), {config.curve_runs:g} "
        "full-length runs' worth of training steps (curve problems). Generated by "
        f"`python -m bench.search_peers` in {report['wall_seconds']} s "
        f"({report['note']}).",
        "",
        "Searchers (bench/peers.py):",
        "",
    ]
    for name in config.searchers:
        lines.append(f"- `{name}`: {peers.SEARCHERS[name][1]}")
    lines += [
        f"- Optuna AutoSampler: {report['auto_sampler']}",
        "",
        "Compute is counted in trials on analytic problems and in training steps on curve "
        "problems (bench/replay.py: k workers, a trial holds a slot for its steps). "
        "Pruners never act on analytic problems (one evaluation), so the pruner-only arms "
        "are left out there. Quality of the incumbent (the finished trial with the best "
        "final value): the value (analytic), the noise-free final loss (synthetic curves), "
        "the matched configuration's mean final eval loss over its recorded seeds (finetune "
        "table; the searcher sees one seed's curve). Ratios: "
        "kubetune / best peer, lower is better for kubetune; `never` means not reached in "
        "the median seed. `kubetune-asha` is shown but is not a peer.",
        "",
    ]
    lines += caveats(report, config)
    lines += summary(report)
    for pct in TARGETS:
        lines += [
            f"## Compute to reach within {percent(pct)} of the best (median over seeds)",
            "",
            "| problem | p | kubetune | best peer | peer | ratio | seeds reached (ours vs peer) |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in report["rows"]:
            v = row[f"to_{pct}"]
            arms = row["arms"]
            lines.append(
                f"| {row['problem']} | {row['parallelism']} | {fmt(v['ours'])} | "
                f"{v['best_peer']} | {fmt(v['peer'])} | {ratio_text(v)} | "
                f"{reached(arms[peers.OURS], pct)} vs {reached(arms[v['best_peer']], pct)} |"
            )
        lines.append("")
    lines += [
        "## Relative regret at the budget (median over seeds)",
        "",
        "The means beside the medians: where some seeds end in a local optimum (Hartmann6 "
        "has one at regret 0.036), the median flips with one seed and the mean says more. "
        "The last column asks whether the seeds show a difference at all: one-sided "
        f"Mann-Whitney U tests over the per-seed regrets, each way (p < {SIGNIFICANCE}); "
        "the peer is the one picked after the fact, so a loss is, if anything, shown too "
        "readily.",
        "",
        "| problem | p | kubetune | best peer | peer | ratio | mean: kubetune vs peer "
        "| p (ours worse / better): shown |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        v = row["regret"]
        arms = row["arms"]
        lines.append(
            f"| {row['problem']} | {row['parallelism']} | {fmt(v['ours'], '.4f')} | "
            f"{v['best_peer']} | {fmt(v['peer'], '.4f')} | {ratio_text(v)} | "
            f"{fmt(mean_regret(arms[peers.OURS]), '.4f')} vs "
            f"{fmt(mean_regret(arms[v['best_peer']]), '.4f')} | "
            f"{v['p_worse']:.3f} / {v['p_better']:.3f}: {v['significant']} |"
        )
    lines += ["", "## Every arm", ""]
    lines += [
        "| problem | p | searcher | seeds | regret | "
        + " | ".join(f"to {percent(pct)}" for pct in TARGETS)
        + " | trials | pruned |",
        "|---|---|---|---|---|" + "---|" * len(TARGETS) + "---|---|",
    ]
    for row in report["rows"]:
        for name, arm in row["arms"].items():
            lines.append(
                f"| {row['problem']} | {row['parallelism']} | {name} | {arm['seeds']} | "
                f"{fmt(arm['median_regret'], '.4f')} | "
                + " | ".join(fmt(arm[f"median_to_{pct}"]) for pct in TARGETS)
                + f" | {arm['median_trials']:.0f} | {arm['median_pruned']:.0f} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.common_parser(__doc__, RESULTS, table=True, render=True)
    parser.add_argument("--analytic-trials", type=int, help="budget on analytic problems")
    parser.add_argument("--curve-runs", type=float, help="budget on curves, in full runs")
    parser.add_argument("--slow-seeds", type=int, help="seeds for slow searchers (optuna-gp)")
    parser.add_argument("--table-seeds", type=int, help="seeds on the fine-tuning table")
    parser.add_argument("--jobs", type=int, default=1, help="processes that play seeds")
    parser.add_argument("--searchers", help="comma-separated subset of bench/peers.py names")
    parser.add_argument(
        "--problems",
        help=f"comma-separated subset of {', '.join(PROBLEM_NAMES)}; other rows are kept "
        "from --out's JSON",
    )
    args = parser.parse_args(argv)
    if args.render:
        written = json.loads((args.out / "search_peers.json").read_text())
        written["rows"] = [compare(row) for row in written["rows"]]
        (args.out / "search_peers.json").write_text(json.dumps(written, indent=2) + "\n")
        saved = written["config"] | {
            "parallelism": tuple(written["config"]["parallelism"]),
            "searchers": tuple(written["config"]["searchers"]),
        }
        (args.out / "search_peers.md").write_text(markdown(written, Config(**saved)))
        return 0
    config = QUICK if args.quick else FULL
    config = replace(config, seeds=cli.seeds(parser, args, config.seeds))
    if args.seeds is not None:
        # --seeds sets every count; --table-seeds, below, may set the tables apart.
        config = replace(config, table_seeds=None)
    if args.jobs < 1:
        parser.error("--jobs: must be >= 1")
    for flag in ("analytic_trials", "curve_runs", "slow_seeds", "table_seeds"):
        value = getattr(args, flag)
        if value is not None:
            if value <= 0:
                parser.error(f"--{flag.replace('_', '-')}: must be > 0")
            config = replace(config, **{flag: value})
    if args.searchers:
        names = tuple(args.searchers.split(","))
        unknown = [n for n in names if n not in peers.SEARCHERS]
        if unknown or peers.OURS not in names:
            parser.error(f"--searchers: unknown {unknown} (must include {peers.OURS!r})")
        config = replace(config, searchers=names)
    chosen = set(PROBLEM_NAMES)
    if args.problems:
        chosen = set(args.problems.split(","))
        if chosen - set(PROBLEM_NAMES):
            parser.error(f"--problems: unknown {sorted(chosen - set(PROBLEM_NAMES))}")
    started = time.perf_counter()
    print(f"search peers: {config}")
    report: dict[str, Any] = {"config": config.__dict__, "rows": []}
    report["auto_sampler"] = peers.auto_sampler_status()
    loaded = problems(args.table, args.quick)
    pool = seed_pool(args.jobs, args.table, args.quick) if args.jobs > 1 else None
    try:
        for problem in loaded:
            if problem.name not in chosen:
                continue
            if isinstance(problem, TabularCurves):
                report.setdefault("tables", {})[problem.name] = {
                    "runs": len(problem.runs),
                    "configs": len(problem.replicates),
                    "max_steps": problem.max_steps,
                    "seeds": sorted(set(problem.replicates)),
                    **needle(problem),
                }
            for workers in config.parallelism:
                result = study(problem, config, workers, print, pool)
                row = {"problem": problem.name, "parallelism": workers, **result}
                report["rows"].append(compare(row))
    finally:
        if pool is not None:
            pool.shutdown()
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    report["note"] = "full size" if config == FULL else "REDUCED size: rerun at full size"
    if args.problems:
        _keep_other_rows(report, args.out / "search_peers.json", chosen, tabular_names(loaded))
    text = markdown(report, config)
    print(text)
    cli.write_report(args.out, "search_peers", report, text)
    print(f"wrote {args.out}/search_peers.json and .md in {report['wall_seconds']}s")
    return 0


def _keep_other_rows(
    report: dict[str, Any], saved: Path, chosen: set[str], tabular: set[str]
) -> None:
    """Add the rows (and table notes) of problems not chosen from an earlier run's JSON.

    The kept rows must come from a run with the same settings, except settings that only
    the rerun rows read: table_seeds when every table is among them, and seeds when every
    other problem is and both runs gave the tables the same count of their own.
    """
    if not saved.exists():
        return
    earlier = json.loads(saved.read_text())
    mine = json.loads(json.dumps(report["config"]))
    theirs = dict(earlier["config"])
    if tabular <= chosen:
        mine.pop("table_seeds", None)
        theirs.pop("table_seeds", None)
    elif set(PROBLEM_NAMES) - tabular <= chosen and mine.get("table_seeds") is not None:
        mine.pop("seeds", None)
        theirs.pop("seeds", None)
    if theirs != mine:
        raise SystemExit(f"--problems: {saved} was run with other settings: {earlier['config']}")
    kept = [row for row in earlier["rows"] if row["problem"] not in chosen]
    order = {name: i for i, name in enumerate(PROBLEM_NAMES)}
    report["rows"] = sorted(kept + report["rows"], key=lambda r: order[r["problem"]])
    for name, table in earlier.get("tables", {}).items():
        if name not in chosen:
            report.setdefault("tables", {})[name] = table
    report["wall_seconds"] = round(report["wall_seconds"] + earlier["wall_seconds"], 1)


if __name__ == "__main__":
    raise SystemExit(main())
