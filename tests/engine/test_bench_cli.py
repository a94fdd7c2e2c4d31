"""bench/cli.py: the flags the four benchmark CLIs share, and one compute thread for each."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from bench import cli, mo_pruning, pruning, search_efficiency, search_peers

BENCHES = (pruning, mo_pruning, search_peers, search_efficiency)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# Runs in a fresh interpreter: notes the thread variables at the moment numpy and torch are
# first imported (they read them once, then), wherever in the bench's imports that happens.
PROBE = """
import importlib.abc, json, os, sys
seen = {}
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in ("numpy", "torch") and name not in seen:
            seen[name] = [os.environ.get(v) for v in %r]
        return None
sys.meta_path.insert(0, Watch())
import importlib
importlib.import_module(sys.argv[1])
import torch
print(json.dumps({"seen": seen, "torch_threads": torch.get_num_threads()}))
"""


@pytest.mark.parametrize("bench", [b.__name__ for b in BENCHES])
def test_each_bench_pins_one_thread_before_numpy_and_torch_load(bench: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    done = subprocess.run(
        [sys.executable, "-c", PROBE % (THREAD_VARS,), bench],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["seen"]["numpy"] == ["1", "1", "1"], f"{bench} loads numpy before bench.cli"
    assert probe["seen"]["torch"] == ["1", "1", "1"]
    assert probe["torch_threads"] == 1


def test_a_callers_thread_setting_is_kept() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "3"}
    code = "import bench.cli, os; print(os.environ['OMP_NUM_THREADS'])"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "3"


@pytest.mark.parametrize("bench", BENCHES, ids=lambda b: b.__name__)
def test_seeds_below_one_is_refused_with_the_flag_named(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.main(["--quick", "--seeds", "0", "--out", "/nonexistent"])
    assert exited.value.code == 2
    assert "--seeds: must be >= 1" in capsys.readouterr().err


def test_common_parser_flags_and_defaults(tmp_path: Path) -> None:
    plain = cli.common_parser("Doc line.\nmore", tmp_path).parse_args([])
    assert vars(plain) == {"quick": False, "seeds": None, "out": tmp_path}
    full = cli.common_parser(None, tmp_path, table=True, render=True)
    args = full.parse_args(["--quick", "--seeds", "3", "--render", "--table", "t.jsonl"])
    assert (args.quick, args.seeds, args.render, args.table) == (True, 3, True, Path("t.jsonl"))
    assert full.parse_args([]).table == cli.finetune_curves.DATA
    assert cli.seeds(full, args, 10) == 3
    assert cli.seeds(full, full.parse_args([]), 10) == 10
