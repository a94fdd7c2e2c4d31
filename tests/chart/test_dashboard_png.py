"""The dashboards' main panels drawn with matplotlib from their own queries: each has data."""

from pathlib import Path

import pytest

from tests.chart.live_run import ScrapedRun
from tests.chart.render_dashboards import MAIN_PANELS, render_dashboard

pytestmark = pytest.mark.slow
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The trainer reports GPU memory only on CUDA; on a CPU-only machine that panel is empty.
CPU_ONLY_EMPTY = {"GPU memory per trial"}


@pytest.mark.parametrize("name", sorted(MAIN_PANELS))
def test_main_panels_render_with_data(scraped: ScrapedRun, tmp_path: Path, name: str) -> None:
    import torch

    drawn = render_dashboard(scraped, name, tmp_path)
    assert set(drawn) == set(MAIN_PANELS[name])
    expected_empty = set() if torch.cuda.is_available() else CPU_ONLY_EMPTY
    assert {title for title, count in drawn.items() if count == 0} <= expected_empty, drawn
    assert drawn.get("Trials and their parameters", 2) == 2
    png = (tmp_path / f"{name}.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 20_000
