"""Multi-objective pruning (MO-ASHA) against no pruning: hypervolume per unit of compute.

A two-objective version of the fine-tuning table (bench/finetune_curves.py): minimize the
eval loss and the LoRA rank ``lora_r`` (trainable parameters grow with it). The rank is
known from the first evaluation on (a static objective: the trial reports it with every
evaluation, as a trainer reporting its trainable parameter count would), the loss comes
from the recorded curve of the run the suggestion plays (bench/replay.TabularCurves).

Arms, all SweepEngine with the default multi-objective sampler (TPE), driven as the
operator drives it, on bench/replay.py's clock:

- ``none``: earlyStopping none;
- ``mo-asha``: earlyStopping asha (non-dominated sorting at each rung);
- ``loss-only-asha``: ASHA on the eval loss alone (what pruning on the first objective
  would do; not a spec option, emulated with the same rung code on one objective).

Two views, medians over seeds:

1. the same number of trials: hypervolume of the finished trials' front, steps spent,
   and hypervolume per step, each against no pruning;
2. the same compute (``--runs`` full-length runs' worth of steps; the pruned arms start
   more trials): hypervolume reached.

Hypervolume: of the front of (final eval loss, lora_r) over finished trials, both
minimized, against two reference points: the table's worst final loss and the space's
largest rank (the whole front counts), and the table's median final loss with that rank
(only the better half of losses counts: a tighter view of the region that matters).

    python -m bench.mo_pruning             # committed run
    python -m bench.mo_pruning --quick     # smoke

Writes bench/results/mo_pruning.json and .md (or under --out).
"""

import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cli, finetune_curves  # cli first: it pins threads
from bench.replay import Params, TabularCurves, play, trial_seed

from kubetune.engine import SweepEngine
from kubetune.engine.mo_asha import mo_asha_prunes
from kubetune.engine.pruners import AshaPruner
from kubetune.spec import SweepSpec

RESULTS = Path(__file__).resolve().parent / "results"
COST = "lora_r"
MIN_STEPS = 5
REDUCTION = 3
ARMS = ("none", "mo-asha", "loss-only-asha")


@dataclass(frozen=True)
class Config:
    seeds: int
    trials: int
    workers: int
    runs: float  # the equal-compute view's budget, in full-length runs


FULL = Config(seeds=10, trials=40, workers=4, runs=12.0)
QUICK = Config(seeds=1, trials=8, workers=2, runs=4.0)


def spec_for(problem: TabularCurves, seed: int, config: Config, pruned: bool) -> SweepSpec:
    doc: dict[str, Any] = {
        "objectives": [
            {"metric": "eval_loss", "direction": "minimize"},
            {"metric": COST, "direction": "minimize"},
        ],
        "parameters": problem.parameters,
        "algorithm": {"seed": seed},
        "budget": {
            "maxTrials": config.trials,
            "parallelism": config.workers,
            "maxFailedTrials": 0,
        },
        "trainer": {"maxSteps": problem.max_steps, "evalEvery": problem.eval_every},
    }
    if pruned:
        doc["earlyStopping"] = {
            "name": "asha",
            "minSteps": MIN_STEPS,
            "reductionFactor": REDUCTION,
        }
    return SweepSpec.model_validate(doc)


@dataclass
class MoSearcher:
    """SweepEngine with two objectives; the cost is the rank of the run actually played."""

    engine: SweepEngine
    problem: TabularCurves
    seed: int
    loss_only: bool = False
    finished: dict[int, tuple[float, float]] = field(default_factory=dict)
    _queue: list[tuple[int, Params]] = field(default_factory=list)
    _cost: dict[int, float] = field(default_factory=dict)
    _loss_series: dict[int, list[tuple[int, tuple[float, ...]]]] = field(default_factory=dict)

    def ask(self) -> tuple[int, Params] | None:
        if not self._queue:
            self._queue = [(p.number, dict(p.params)) for p in self.engine.start_trials()]
        if not self._queue:
            return None
        number, params = self._queue.pop(0)
        # The same recorded run bench.replay.play will play for this trial.
        played = self.problem.nearest(params, trial_seed(self.seed, number))
        self._cost[number] = float(played.params[COST])
        return number, params

    def report(self, number: int, step: int, value: float, last: bool) -> bool:
        self.engine.report(number, step, [value, self._cost[number]])
        if last:
            return False
        if self.loss_only:
            self._loss_series.setdefault(number, []).append((step, (value,)))
            asha = AshaPruner(MIN_STEPS, REDUCTION, self.problem.max_steps)
            stop = mo_asha_prunes(asha, number, self._loss_series, [1.0])
        else:
            stop = number in self.engine.to_prune()
        if stop:
            self.engine.prune(number)
        return stop

    def complete(self, number: int, value: float, step: int) -> None:
        self.engine.complete(number, [value, self._cost[number]], step)
        self.finished[number] = (value, self._cost[number])


def hypervolume(points: Sequence[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by ``points`` (both minimized) and bounded by ``reference``."""
    inside = sorted({p for p in points if p[0] < reference[0] and p[1] < reference[1]})
    area, ceiling = 0.0, reference[1]
    for x, y in inside:  # by first objective: each point adds the strip below the last
        if y < ceiling:
            area += (reference[0] - x) * (ceiling - y)
            ceiling = y
    return area


def reference_points(problem: TabularCurves) -> dict[str, tuple[float, float]]:
    finals = [run.final for run in problem.runs]
    top = max(float(p["max"]) for p in problem.parameters if p["name"] == COST)
    return {"worst": (max(finals), top), "median": (median(finals), top)}


def one_run(
    problem: TabularCurves, arm: str, seed: int, config: Config, budget: float, trials: int
) -> dict[str, float]:
    sized = Config(config.seeds, trials, config.workers, config.runs)
    spec = spec_for(problem, seed, sized, pruned=arm == "mo-asha")
    searcher = MoSearcher(
        SweepEngine(spec, f"mo-{seed}"), problem, seed, loss_only=arm == "loss-only-asha"
    )
    trace = play(problem, searcher, config.workers, budget, seed)
    front = list(searcher.finished.values())
    refs = reference_points(problem)
    return {
        "steps": trace.spent,
        "hypervolume": hypervolume(front, refs["worst"]),
        "hypervolume_median_ref": hypervolume(front, refs["median"]),
        "trials": float(trace.trials),
        "completed": float(trace.completed),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def view(problem: TabularCurves, config: Config, equal_compute: bool) -> dict[str, Any]:
    budget = config.runs * problem.max_steps if equal_compute else math.inf
    # Equal compute: enough maxTrials that the budget, not the trial count, ends each run.
    trials = 1000 if equal_compute else config.trials
    arms: dict[str, Any] = {}
    for arm in ARMS:
        runs = [one_run(problem, arm, s, config, budget, trials) for s in range(config.seeds)]
        arms[arm] = {
            "runs": runs,
            **{f"median_{k}": median([r[k] for r in runs]) for k in runs[0]},
        }
    none = arms["none"]

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else (1.0 if a == b else math.inf)

    for row in arms.values():
        row["hypervolume_vs_none"] = ratio(row["median_hypervolume"], none["median_hypervolume"])
        row["hypervolume_median_ref_vs_none"] = ratio(
            row["median_hypervolume_median_ref"], none["median_hypervolume_median_ref"]
        )
        row["steps_vs_none"] = row["median_steps"] / none["median_steps"]
        per_step = [r["hypervolume"] / r["steps"] for r in row["runs"]]
        none_per_step = [r["hypervolume"] / r["steps"] for r in none["runs"]]
        row["hypervolume_per_step_vs_none"] = ratio(median(per_step), median(none_per_step))
    return {"budget_steps": None if math.isinf(budget) else budget, "arms": arms}


def markdown(report: dict[str, Any]) -> str:
    config = report["config"]
    refs = report["reference_points"]
    lines = [
        "# Multi-objective pruning: MO-ASHA against no pruning",
        "",
        f"Fine-tuning table ({report['recorded_runs']} recorded runs of "
        f"{report['max_steps']} steps, an evaluation every {report['eval_every']}); objectives "
        f"eval_loss and {COST}, both minimized. {config['seeds']} seeds "
        f"(0..{config['seeds'] - 1}), {config['workers']} trials at once; earlyStopping asha "
        f"minSteps {MIN_STEPS}, reductionFactor {REDUCTION}. Reference points for the "
        f"hypervolume: worst (eval_loss {refs['worst'][0]:.4f}, {COST} {refs['worst'][1]:.0f}) "
        f"and median (eval_loss {refs['median'][0]:.4f}, {COST} {refs['median'][1]:.0f}), "
        "HV (median ref) in the tables. Generated by "
        f"`python -m bench.mo_pruning` in {report['wall_seconds']} s.",
        "",
        f"## Same number of trials ({config['trials']})",
        "",
        "| arm | HV / none | HV (median ref) / none | steps / none | HV per step / none "
        "| completed |",
        "|---|---|---|---|---|---|",
    ]
    for arm, row in report["equal_trials"]["arms"].items():
        lines.append(
            f"| {arm} | {row['hypervolume_vs_none']:.3f} | "
            f"{row['hypervolume_median_ref_vs_none']:.3f} | {row['steps_vs_none']:.3f} | "
            f"{row['hypervolume_per_step_vs_none']:.2f} | {row['median_completed']:.0f} |"
        )
    lines += [
        "",
        f"## Same compute ({config['runs']:g} full runs' worth: "
        f"{report['equal_compute']['budget_steps']:.0f} steps)",
        "",
        "| arm | HV / none | HV (median ref) / none | trials started | completed |",
        "|---|---|---|---|---|",
    ]
    for arm, row in report["equal_compute"]["arms"].items():
        lines.append(
            f"| {arm} | {row['hypervolume_vs_none']:.3f} | "
            f"{row['hypervolume_median_ref_vs_none']:.3f} | {row['median_trials']:.0f} | "
            f"{row['median_completed']:.0f} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.common_parser(__doc__, RESULTS, table=True)
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    config = replace(config, seeds=cli.seeds(parser, args, config.seeds))
    problem = finetune_curves.load_problem(args.table)
    if problem is None:
        print(f"mo_pruning: no recorded runs in {args.table}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    report: dict[str, Any] = {
        "config": config.__dict__,
        "recorded_runs": len(problem.runs),
        "max_steps": problem.max_steps,
        "eval_every": problem.eval_every,
        "reference_points": {k: list(v) for k, v in reference_points(problem).items()},
        "equal_trials": view(problem, config, equal_compute=False),
        "equal_compute": view(problem, config, equal_compute=True),
    }
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    text = markdown(report)
    print(text)
    cli.write_report(args.out, "mo_pruning", report, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
