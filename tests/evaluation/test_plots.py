"""Top-k curve plots: one panel per data set, one line per system, written atomically as PNG."""

from __future__ import annotations

import pytest

from spart.evaluation.evaluate import SystemResult
from spart.evaluation.plots import plot_topk_curves


def result(system, dataset, kind, curve, ks=None):
    return SystemResult(system, dataset, kind, {}, curve, ks or list(range(1, len(curve) + 1)), meta={"n_queries": 10})


def test_plot_writes_png_with_one_panel_per_dataset(tmp_path):
    import matplotlib.image as mpimg

    results = [
        result("bm25", "wiki/test", "dpr", [0.1 * min(k, 9) / 9 + 0.1 for k in range(1, 101)]),
        result("dense", "wiki/test", "dpr", [0.2 + 0.005 * k for k in range(1, 101)]),
        result("bm25", "pydocs/test", "beir", [0.1, 0.3, 0.5], [1, 10, 100]),
    ]
    out = plot_topk_curves(results, tmp_path / "figs" / "curves.png", title="baselines")
    image = mpimg.imread(out)
    height, width = image.shape[:2]
    assert width > 1.8 * height  # two panels side by side
    assert not list((tmp_path / "figs").glob(".*"))  # no temporary file left behind


def test_plot_rejects_empty(tmp_path):
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_topk_curves([], tmp_path / "x.png")
