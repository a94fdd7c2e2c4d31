"""bench/surrogate.py: the landscape probe fits a smooth table well and finds its minimum,
its likelihood gradient is right, and it judges a surrogate by its error and its minimum."""

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bench.replay import Recorded, TabularCurves
from bench.surrogate import Landscape, _nll, encode, main, trustworthy
from scipy.optimize import approx_fprime

SPACE: list[dict[str, Any]] = [
    {"name": "learning_rate", "type": "float", "min": 1e-5, "max": 1e-2, "log": True},
    {"name": "lora_r", "type": "int", "min": 2, "max": 64, "log": True},
    {"name": "per_device_train_batch_size", "type": "categorical", "values": [4, 8, 16]},
    {"name": "lr_scheduler_type", "type": "categorical", "values": ["linear", "cosine"]},
]


def smooth(params: dict[str, Any]) -> float:
    """Lowest (1.0) at learning rate 1e-3 and rank 16, whatever the categoricals."""
    lr = math.log10(params["learning_rate"]) + 3.0
    rank = math.log2(params["lora_r"]) - 4.0
    return 1.0 + 0.08 * lr**2 + 0.01 * rank**2


def table(configs: int = 90) -> TabularCurves:
    rng = np.random.default_rng(3)
    runs = []
    for c in range(configs):
        params = {
            "learning_rate": float(10 ** rng.uniform(-5, -2)),
            "lora_r": round(float(2 ** rng.uniform(1, 6))),
            "per_device_train_batch_size": [4, 8, 16][c % 3],
            "lr_scheduler_type": ["linear", "cosine"][c % 2],
        }
        for s in range(2):
            final = smooth(params) * math.exp(rng.normal(0, 0.005))
            runs.append(Recorded(f"c{c}-s{s}", params, [(5, 2 * final), (10, final)]))
    return TabularCurves("smooth", SPACE, runs)


def test_encode_places_numeric_choices_on_a_log_scale_and_one_hots_the_rest() -> None:
    z = encode(
        SPACE,
        {
            "learning_rate": 1e-5,
            "lora_r": 64,
            "per_device_train_batch_size": 8,
            "lr_scheduler_type": "cosine",
        },
    )
    assert z == pytest.approx([0.0, 1.0, 0.5, 0.0, 1.0])


def test_likelihood_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((25, 3)), rng.normal(size=25)
    theta = np.array([-0.5, 0.2, 0.7, 0.1, -2.0])
    _, grad = _nll(theta, x, y)
    numeric = approx_fprime(theta, lambda t: _nll(t, x, y)[0], 1e-6)
    assert np.allclose(grad, numeric, rtol=1e-3, atol=1e-4)


def test_a_smooth_table_gives_a_landscape_that_could_stand_in() -> None:
    report = Landscape(table()).report()
    assert report["cv_rmse_log"] < 0.02
    assert abs(report["minimum"] - 1.0) < 0.01
    assert abs(math.log10(report["minimum_params"]["learning_rate"]) + 3.0) < 0.3
    assert trustworthy(report)


def test_a_minimum_below_the_noise_or_a_loose_fit_is_not_trusted() -> None:
    base = {"seed_sd_log": 0.01, "best_recorded_mean": 1.0, "minimum": 0.99, "cv_rmse_log": 0.015}
    assert trustworthy(base)
    assert not trustworthy(base | {"minimum": 0.95})
    assert not trustworthy(base | {"cv_rmse_log": 0.05})


def test_the_cli_names_a_bad_flag_and_an_empty_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for argv, field in (
        (["--table", str(empty), "--out", str(tmp_path)], "--table: no recorded runs"),
        (["--quick", "--out", str(tmp_path)], "--quick, --seeds"),
        (["--seeds", "3", "--out", str(tmp_path)], "--quick, --seeds"),
    ):
        with pytest.raises(SystemExit) as stopped:
            main(argv)
        assert stopped.value.code == 2
        assert field in capsys.readouterr().err
    assert not list(tmp_path.glob("surrogate_probe.*"))
