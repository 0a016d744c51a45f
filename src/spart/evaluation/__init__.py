"""spart.evaluation: DPR answer matching, ranx BEIR metrics, pipeline evaluation, plots and fusion tuning.

Names are imported lazily so ``import spart.evaluation`` stays cheap.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "has_answer": "spart.evaluation.answers",
        "hits_for_ranking": "spart.evaluation.answers",
        "top_k_accuracy": "spart.evaluation.metrics",
        "accuracy_curve": "spart.evaluation.metrics",
        "beir_metrics": "spart.evaluation.metrics",
        "compare_runs": "spart.evaluation.significance",
        "paired_significance": "spart.evaluation.significance",
        "baseline_significance": "spart.evaluation.significance",
        "compare_records": "spart.evaluation.significance",
        "EvalDataset": "spart.evaluation.datasets",
        "EvalQuery": "spart.evaluation.datasets",
        "load_dataset": "spart.evaluation.datasets",
        "Retrieved": "spart.evaluation.runs",
        "run_pipeline": "spart.evaluation.runs",
        "SystemResult": "spart.evaluation.evaluate",
        "evaluate_pipeline": "spart.evaluation.evaluate",
        "evaluate_rankings": "spart.evaluation.evaluate",
        "plot_topk_curves": "spart.evaluation.plots",
        "tune_fusion": "spart.evaluation.tuning",
        "encode_corpus_cached": "spart.evaluation.cache",
        "corpus_fingerprint": "spart.evaluation.cache",
        "load_any_pipeline": "spart.evaluation.loading",
    },
)
