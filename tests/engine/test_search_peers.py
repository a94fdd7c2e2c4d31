"""bench/search_peers.py: the ratio against the best peer, and a small end-to-end run."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from bench import search_peers
from bench.replay import Recorded, TabularCurves


def arms(ours: float | None, **rivals: float | None) -> dict[str, Any]:
    table = {"kubetune": {"x": ours}, "kubetune-asha": {"x": 0.0}}  # informational: ignored
    return table | {name: {"x": value} for name, value in rivals.items()}


def test_versus_picks_the_best_peer_and_says_who_wins() -> None:
    won = search_peers.versus(arms(10.0, random=40.0, bohb=20.0), "x")
    assert (won["best_peer"], won["ratio"], won["verdict"]) == ("bohb", 0.5, "ours better")
    lost = search_peers.versus(arms(30.0, random=40.0, bohb=20.0), "x")
    assert (lost["ratio"], lost["verdict"]) == (1.5, "PEER BETTER")
    assert "peer better" in search_peers.ratio_text(lost)
    # None is "never reached": only we got there, only they did, nobody did.
    assert search_peers.versus(arms(5.0, bohb=None), "x")["ratio"] == 0.0
    never = search_peers.versus(arms(None, bohb=5.0), "x")
    assert never["ratio"] is None and never["verdict"] == "PEER BETTER"
    nobody = search_peers.versus(arms(None, bohb=None), "x")
    assert nobody["verdict"] == "neither reached" and search_peers.ratio_text(nobody) == "n/a"


def test_versus_breaks_ties_by_seeds_reached_then_regret() -> None:
    table: dict[str, Any] = {
        "kubetune": {"median_to_0.01": None, "reached_0.01": 2, "median_regret": 0.1},
        "random": {"median_to_0.01": None, "reached_0.01": 0, "median_regret": 0.01},
        "bohb": {"median_to_0.01": None, "reached_0.01": 1, "median_regret": 0.5},
        "ray-asha": {"median_to_0.01": None, "reached_0.01": 1, "median_regret": 0.2},
    }
    assert search_peers.versus(table, "median_to_0.01")["best_peer"] == "ray-asha"


def test_quick_run_writes_ratio_tables(tmp_path: Path) -> None:
    argv = ["--quick", "--searchers", "kubetune,optuna-tpe,ray-asha", "--out", str(tmp_path)]
    assert search_peers.main([*argv, "--table", str(tmp_path / "none.jsonl")]) == 0
    report = json.loads((tmp_path / "search_peers.json").read_text())
    rows = {(r["problem"], r["parallelism"]): r for r in report["rows"]}
    assert set(rows) == {("branin", 1), ("branin", 4), ("curves", 1), ("curves", 4)}
    # ASHA is a pruner: it does not play the analytic problem, and prunes on curves.
    assert set(rows[("branin", 1)]["arms"]) == {"kubetune", "optuna-tpe"}
    assert rows[("curves", 4)]["arms"]["ray-asha"]["median_pruned"] > 0
    # One at a time the default screens its startup trials, so more than the 4 whole runs
    # the compute buys fit in.
    one = rows[("curves", 1)]["arms"]["kubetune"]
    assert one["median_trials"] > 4 and one["median_pruned"] > 0
    text = (tmp_path / "search_peers.md").read_text()
    assert "## Relative regret at the budget" in text and "| curves | 4 |" in text
    assert ": no difference shown |" in text or ": ours better |" in text or "BETTER |" in text
    assert "regret at budget, differences the seeds show" in text
    # --render rebuilds the same page from the JSON alone.
    (tmp_path / "search_peers.md").unlink()
    assert search_peers.main(["--render", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "search_peers.md").read_text() == text and "## Summary" in text


def test_problems_reruns_some_rows_and_keeps_the_others(tmp_path: Path) -> None:
    argv = ["--quick", "--searchers", "kubetune,random", "--out", str(tmp_path)]
    argv += ["--table", str(tmp_path / "none.jsonl")]
    assert search_peers.main(argv) == 0
    first = json.loads((tmp_path / "search_peers.json").read_text())
    assert search_peers.main([*argv, "--problems", "curves"]) == 0
    second = json.loads((tmp_path / "search_peers.json").read_text())
    assert [(r["problem"], r["parallelism"]) for r in second["rows"]] == [
        ("branin", 1), ("branin", 4), ("curves", 1), ("curves", 4)
    ]  # fmt: skip
    assert second["rows"][:2] == first["rows"][:2], "branin rows kept as they were"
    # The kept rows' time is added to the rerun's (>=: a quick rerun can round to 0.0 s).
    assert second["wall_seconds"] >= first["wall_seconds"]
    # Other settings than the saved run's: refused, nothing mixed.
    with pytest.raises(SystemExit, match="other settings"):
        search_peers.main([*argv, "--problems", "curves", "--seeds", "2"])


def test_significance_tells_a_real_difference_from_seed_luck() -> None:
    low = [0.001 * i for i in range(1, 21)]
    high = [r + 0.05 for r in low]
    assert search_peers.significance(high, low)["significant"] == "PEER BETTER"
    assert search_peers.significance(low, high)["significant"] == "ours better"
    # Interleaved seeds: the medians differ (0.0105 against 0.011) but nothing is shown.
    odd, even = low[0::2], low[1::2]
    shown = search_peers.significance(odd, even)
    assert shown["significant"] == "no difference shown" and shown["p_worse"] > 0.05
    # A seed with no finished trial (None) ranks worst, not best.
    assert search_peers.significance([None] * 20, low)["significant"] == "PEER BETTER"
    # One seed each, equal: no difference, and no NaN in the report.
    one = search_peers.significance([0.0], [0.0])
    assert one["significant"] == "no difference shown" and one["p_worse"] == one["p_worse"]


def test_table_caveat_says_how_many_seeds_each_configuration_is_scored_over() -> None:
    config = search_peers.QUICK
    table = {"runs": 1080, "configs": 360, "max_steps": 40}
    report: dict[str, Any] = {"tables": {"finetune": table | {"seeds": [3]}}}
    text = search_peers.caveats(report, config)[0]
    assert "1080 recorded runs of 360 configurations (40 steps)" in text
    assert "recorded with 3 seeds and scored on its mean" in text
    report["tables"]["finetune"]["seeds"] = [1, 3]
    assert "unequal counts favour" in search_peers.caveats(report, config)[0]
    # A report from before seeds were counted says nothing about them.
    report["tables"]["finetune"] = table
    assert "scored" not in search_peers.caveats(report, config)[0]


def test_table_note_counts_configurations_near_the_best_and_the_seed_spread() -> None:
    space = [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}]

    def run(key: str, x: float, final: float) -> Recorded:
        return Recorded(key, {"x": x}, [(10, final + 1.0), (20, final)])

    # Best mean 1.0 (seeds 0.99 and 1.01); 1.005 is within 1%, 1.04 within 5%, 1.2 in
    # neither.
    runs = [run("a0", 0.1, 0.99), run("a1", 0.1, 1.01), run("b0", 0.2, 1.005)]
    runs += [run("c0", 0.3, 1.04), run("d0", 0.4, 1.2), run("d1", 0.4, 1.2)]
    found = search_peers.needle(TabularCurves("t", space, runs))
    assert found["within"] == {"0.01": 2, "0.002": 1, "0.05": 3}
    # Only replicated configurations have a spread (sample sd over the mean): a has
    # 0.01414, d has 0; the median is 0.00707.
    assert found["seed_spread"] == pytest.approx(0.01 * 2**0.5 / 2)
    text = search_peers.needle_note(found)
    assert "2 within 1%, 1 within 0.2%, 3 within 5% of the best mean" in text
    assert "median standard deviation of 0.71% of its mean" in text
    assert search_peers.needle_note({}) == "", "tables saved before the note: nothing said"


@pytest.mark.timeout(300)  # a hung pool process fails here, not at CI's limit
def test_jobs_play_the_same_seeds_in_several_processes(tmp_path: Path) -> None:
    argv = ["--quick", "--searchers", "kubetune,random", "--problems", "branin", "--seeds", "3"]
    argv += ["--table", str(tmp_path / "none.jsonl")]
    rows = []
    for jobs in ("1", "2"):
        out = tmp_path / jobs
        assert search_peers.main([*argv, "--jobs", jobs, "--out", str(out)]) == 0
        report = json.loads((out / "search_peers.json").read_text())
        assert report["config"]["table_seeds"] is None, "--seeds counts for the tables too"
        for row in report["rows"]:
            for arm in row["arms"].values():
                assert arm["seeds"] == 3
                del arm["seconds"]
        rows.append(report["rows"])
    assert rows[0] == rows[1]
    with pytest.raises(SystemExit):
        search_peers.main([*argv, "--jobs", "0", "--out", str(tmp_path)])


def test_tables_get_their_own_seed_count() -> None:
    space = [{"name": "x", "type": "float", "min": 0.0, "max": 1.0}]
    table = TabularCurves("t", space, [Recorded("a", {"x": 0.5}, [(10, 1.0)])])
    curves = search_peers.problems(Path("/nonexistent.jsonl"), quick=True)[1]
    config = search_peers.QUICK
    assert search_peers.seeds_for(table, "random", config) == config.seeds
    more = dataclasses.replace(config, seeds=20, table_seeds=60, slow_seeds=30)
    assert search_peers.seeds_for(table, "random", more) == 60
    assert search_peers.seeds_for(curves, "random", more) == 20
    assert search_peers.seeds_for(table, "optuna-gp", more) == 30, "slow arms stay capped"
    assert search_peers.FULL.table_seeds is not None
    assert search_peers.FULL.table_seeds > search_peers.FULL.seeds
    assert "ran 60 seeds" in search_peers.caveats({}, more)[0]
    assert "ran " not in search_peers.caveats({}, config)[0]


def test_rerunning_every_table_alone_may_change_its_seed_count(tmp_path: Path) -> None:
    saved = tmp_path / "search_peers.json"
    kept = {"problem": "curves", "parallelism": 1, "arms": {}}
    config = dict(search_peers.FULL.__dict__, table_seeds=None)
    saved.write_text(json.dumps({"config": config, "rows": [kept], "wall_seconds": 1.0}))
    report: dict[str, Any] = {
        "config": dict(config, table_seeds=60),
        "rows": [{"problem": "finetune", "parallelism": 1, "arms": {}}],
        "wall_seconds": 2.0,
    }
    search_peers._keep_other_rows(report, saved, {"finetune"}, {"finetune"})
    assert [r["problem"] for r in report["rows"]] == ["curves", "finetune"]
    # Rows of the table kept from a run with another count would mix counts: refused.
    report["rows"] = []
    with pytest.raises(SystemExit, match="other settings"):
        search_peers._keep_other_rows(report, saved, {"curves"}, {"finetune"})


def test_rerunning_every_other_problem_may_change_their_seed_count(tmp_path: Path) -> None:
    saved = tmp_path / "search_peers.json"
    kept = {"problem": "finetune", "parallelism": 1, "arms": {}}
    earlier = dict(search_peers.FULL.__dict__, seeds=20, table_seeds=60)
    saved.write_text(json.dumps({"config": earlier, "rows": [kept], "wall_seconds": 1.0}))
    others = {"branin", "hartmann6", "curves", "curves-lr-coupled"}

    def rerun(config: dict[str, Any], chosen: set[str]) -> dict[str, Any]:
        report: dict[str, Any] = {
            "config": config,
            "rows": [{"problem": "curves", "parallelism": 1, "arms": {}}],
            "wall_seconds": 2.0,
        }
        search_peers._keep_other_rows(report, saved, chosen, {"finetune"})
        return report

    report = rerun(dict(earlier, seeds=40), others)
    assert [r["problem"] for r in report["rows"]] == ["curves", "finetune"]
    # The kept table rows read table_seeds: another count there would mix counts.
    with pytest.raises(SystemExit, match="other settings"):
        rerun(dict(earlier, seeds=40, table_seeds=40), others)
    # A problem left out keeps its rows from a run with 20 seeds: refused.
    with pytest.raises(SystemExit, match="other settings"):
        rerun(dict(earlier, seeds=40), others - {"branin"})
    # Without a count of their own the tables read seeds.
    saved.write_text(
        json.dumps({"config": dict(earlier, table_seeds=None), "rows": [kept], "wall_seconds": 1})
    )
    with pytest.raises(SystemExit, match="other settings"):
        rerun(dict(earlier, seeds=40, table_seeds=None), others)
