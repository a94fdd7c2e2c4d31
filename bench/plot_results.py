"""Draw the README's performance figure from the benchmarks' own result files.

    python -m bench.plot_results            # writes docs/performance.png

Three panels, each from one result file in bench/results/ (nothing is typed in by hand):
search quality against the peers (search_peers.json), pruning's cost and loss against no
pruning (pruning.json), and the trainer's throughput against its baselines
(trainer_throughput.json). A file that is missing leaves its panel saying so.
"""

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

RESULTS = Path(__file__).resolve().parent / "results"
OUT = Path(__file__).resolve().parent.parent / "docs" / "performance.png"
OURS = "kubetune"
# Regret 0 cannot sit on a log axis; it is drawn at this floor and the floor is labelled.
REGRET_FLOOR = 1e-6


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _missing(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"{what}: no results yet", ha="center", va="center")
    ax.set_axis_off()


def search_panel(ax: Axes, data: dict[str, Any] | None) -> None:
    """Median regret at the budget, per problem and parallelism: ours against every peer."""
    if data is None:
        return _missing(ax, "search_peers")
    rows = data["rows"]
    labels = [f"{r['problem']}\np={r['parallelism']}" for r in rows]
    searchers = sorted({name for r in rows for name in r["arms"]} - {OURS, f"{OURS}-asha"})
    for x, row in enumerate(rows):
        for name in searchers:
            arm = row["arms"].get(name)
            if arm is not None:
                value = max(float(arm["median_regret"]), REGRET_FLOOR)
                ax.scatter(x, value, color="0.65", s=14, zorder=2)
        ours = row["arms"].get(OURS)
        if ours is not None:
            value = max(float(ours["median_regret"]), REGRET_FLOOR)
            ax.scatter(x, value, color="tab:red", s=40, marker="D", zorder=3)
    ax.scatter([], [], color="0.65", s=14, label="peers: " + ", ".join(searchers))
    ax.scatter([], [], color="tab:red", s=40, marker="D", label="kubetune default")
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylabel(f"median relative regret at budget (floor {REGRET_FLOOR:g})")
    seeds = max((a["seeds"] for r in rows for a in r["arms"].values()), default=0)
    ax.set_title(f"Search: regret at equal compute (lower is better; up to {seeds} seeds)")
    ax.legend(fontsize=7, loc="upper left")


def pruning_panel(ax: Axes, data: dict[str, Any] | None) -> None:
    """Each pruning arm: steps spent against the gap to no pruning, per problem."""
    if data is None:
        return _missing(ax, "pruning")
    markers = ["o", "s", "^", "v", "P", "X", "D"]
    problems = list(data["problems"])
    arms = sorted({arm for p in data["problems"].values() for arm in p["arms"]} - {"none"})
    colors = plt.get_cmap("tab10")
    for j, arm in enumerate(arms):
        for i, problem in enumerate(problems):
            found = data["problems"][problem]["arms"].get(arm)
            if found is None:
                continue
            ax.scatter(
                found["steps_vs_none"],
                100 * found["gap_vs_none"],
                color=colors(j),
                marker=markers[i % len(markers)],
                s=36,
            )
    for j, arm in enumerate(arms):
        ax.scatter([], [], color=colors(j), marker="o", label=arm)
    for i, problem in enumerate(problems):
        ax.scatter([], [], color="0.3", marker=markers[i % len(markers)], label=problem)
    ax.axhline(2.0, color="0.5", linestyle="--", linewidth=0.8)
    ax.axvline(1 / 3, color="0.5", linestyle=":", linewidth=0.8)
    ax.set_xlabel("steps spent / no pruning's (target <= 1/3, dotted)")
    ax.set_ylabel("final value vs no pruning, % (target <= 2, dashed)")
    ax.set_title("Pruning: cost against what it loses (lower left is better)")
    ax.legend(fontsize=6, ncol=2)


def throughput_panel(ax: Axes, data: dict[str, Any] | None) -> None:
    """Tokens per CPU-second of each trainer side, ours first."""
    if data is None:
        return _missing(ax, "trainer_throughput")
    measure = str(data.get("primary_measure", "tokens_per_second"))
    sides: list[tuple[str, float]] = [("kubetune trainer", float(data["ours"][measure]))]
    for name, side in data["sides"].items():
        if name != "ours":
            sides.append((name.replace("_", " "), float(side[measure])))
    names = [name for name, _ in sides]
    values = [value for _, value in sides]
    colors = ["tab:red"] + ["0.65"] * (len(sides) - 1)
    ax.barh(range(len(sides)), values, color=colors)
    ax.set_yticks(range(len(sides)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(measure.replace("_", " ") + " (higher is better)")
    ratio = data.get("ratio_vs_strongest")
    title = "Trainer throughput on CPU, tiny model"
    if isinstance(ratio, int | float) and math.isfinite(ratio):
        title += f" (ours / strongest baseline: {ratio:.2f}x)"
    ax.set_title(title)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    fig, axes = plt.subplots(3, 1, figsize=(10, 13))
    search_panel(axes[0], _load("search_peers"))
    pruning_panel(axes[1], _load("pruning"))
    throughput_panel(axes[2], _load("trainer_throughput"))
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
