"""Top-k curves (k = 1..100), one line per system, in the style of Figure 2 of the ART paper.

DPR data sets plot top-k answer accuracy; BEIR data sets plot Recall@k. Several data sets go side by side.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from spart._extras import require
from spart.atomic import atomic_write
from spart.evaluation.evaluate import SystemResult

_MARKS = (1, 5, 20, 50, 100)


def plot_topk_curves(results: Sequence[SystemResult], path: str | os.PathLike, title: str | None = None) -> Path:
    """Draw the k = 1..max_k curves of every result, one panel per data set, and save a PNG atomically.

    :param results: system results (from :func:`spart.evaluation.evaluate.evaluate_pipeline`), any data sets.
    :param path: output image (``.png``).
    :param title: optional figure title.
    :returns: the written path.
    """
    matplotlib = require("matplotlib", "eval")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("nothing to plot: no results")
    datasets = list(dict.fromkeys(r.dataset for r in results))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.0 * len(datasets), 4.4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        group = [r for r in results if r.dataset == dataset]
        for result in group:
            ks = result.curve_ks or list(range(1, len(result.curve) + 1))
            values = [100.0 * v for v in result.curve]
            marks = [i for i, k in enumerate(ks) if k in _MARKS]
            ax.plot(ks, values, label=result.system, linewidth=1.8, marker="o", markersize=4, markevery=marks)
        kind = group[0].kind
        ax.set_xlabel("k (number of retrieved passages)")
        ax.set_ylabel("top-k accuracy (%)" if kind == "dpr" else "Recall@k (%)")
        ax.set_title(f"{dataset} ({group[0].meta.get('n_queries', '?')} questions)")
        ax.set_xlim(0, max(max(r.curve_ks or [len(r.curve)]) for r in group) + 2)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="lower right", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(path) as handle:
            fig.savefig(handle, dpi=120, format="png")
    finally:
        plt.close(fig)
    return path
