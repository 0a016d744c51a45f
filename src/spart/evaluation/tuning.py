"""Tune a hybrid pipeline's fusion (mode and weights / λ) on a dev split, never on the test split.

The pipeline is run **once** on the dev questions, keeping the ranked lists that reach its
``HybridScoreFuser``; every candidate setting is then applied offline with :func:`spart.fusion.fuse` (the
same function the fuser calls) and scored with the evaluator. The best setting is written back into the
fuser, so the tuned pipeline can be saved as YAML and evaluated on test by ``spart eval``.

Deviation from the SPIDER reference code, which picks λ on the very set it reports: here the split used for
tuning is required to differ from the evaluation split (``tune_fusion`` refuses ``test``).

Candidates (two input lists ``(a, b)`` in the fuser's input order):

- ``rrf``: weights ``(1, 1)`` (nothing to tune; kept as a reference point);
- ``convex_minmax`` / ``convex_zscore``: weights ``(α, 1 − α)`` for α = 0, 0.05, …, 1;
- ``weighted_raw``: weights ``(1, λ)`` — DPR's/Pyserini's ``a + λ·b`` — for λ in :data:`LAMBDA_GRID`.

Objective: top-20 accuracy for DPR data sets, nDCG@10 for BEIR (configurable); ties go to the candidate with
the higher mean of all summary metrics, then to the earlier one in grid order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from spart.evaluation.datasets import DPR, EvalDataset
from spart.evaluation.evaluate import evaluate_rankings, texts_by_id
from spart.evaluation.metrics import DEFAULT_BEIR_METRICS, DEFAULT_KS
from spart.evaluation.runs import Retrieved, run_pipeline

ALPHA_GRID = tuple(round(0.05 * i, 2) for i in range(21))
LAMBDA_GRID = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
DEFAULT_MODES = ("rrf", "convex_minmax", "convex_zscore", "weighted_raw")


@dataclass
class FusionCandidate:
    mode: str
    weights: list[float]
    objective: float
    summary: dict[str, float]


@dataclass
class TuningResult:
    fuser: str
    input_lists: list[str]
    objective_metric: str
    split: str
    best: FusionCandidate
    candidates: list[FusionCandidate] = field(repr=False, default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fuser": self.fuser,
            "input_lists": self.input_lists,
            "objective": self.objective_metric,
            "split": self.split,
            "best": vars(self.best),
            "candidates": [vars(c) for c in self.candidates],
        }


def candidate_grid(modes: Sequence[str] = DEFAULT_MODES) -> list[tuple[str, list[float]]]:
    """The (mode, weights) settings tried, in grid order."""
    grid: list[tuple[str, list[float]]] = []
    for mode in modes:
        if mode == "rrf":
            grid.append((mode, [1.0, 1.0]))
        elif mode in ("convex_minmax", "convex_zscore"):
            grid.extend((mode, [a, round(1.0 - a, 2)]) for a in ALPHA_GRID)
        elif mode == "weighted_raw":
            grid.extend((mode, [1.0, lam]) for lam in LAMBDA_GRID)
        else:
            raise ValueError(f"unknown fusion mode {mode!r}; choose from {DEFAULT_MODES}")
    return grid


def find_fuser(pipeline: Any, name: str | None = None) -> tuple[str, Any, list[tuple[str, str]]]:
    """The pipeline's ``HybridScoreFuser`` and, in the order its weights refer to, the components feeding it.

    :returns: ``(fuser_name, fuser, [(sender_component, sender_output_socket), ...])``.
    :raises ValueError: if there is no fuser, several (and no ``name``), or it does not have two input lists.
    """
    from spart.components.fusers import HybridScoreFuser

    fusers = [n for n in pipeline.graph.nodes if isinstance(pipeline.get_component(n), HybridScoreFuser)]
    if name is not None:
        if name not in fusers:
            raise ValueError(f"{name!r} is not a HybridScoreFuser of this pipeline (fusers: {fusers})")
        fusers = [name]
    if len(fusers) != 1:
        raise ValueError(f"expected exactly one HybridScoreFuser in the pipeline, found {fusers}; name one")
    fuser_name = fusers[0]
    fuser = pipeline.get_component(fuser_name)
    incoming = []
    for sender, _, data in pipeline.graph.in_edges(fuser_name, data=True):
        incoming.append((data["to_socket"].name, sender, data["from_socket"].name))
    if fuser.input_names is not None:
        by_socket = {socket: (sender, out) for socket, sender, out in incoming}
        missing = [n for n in fuser.input_names if n not in by_socket]
        if missing:
            raise ValueError(f"fuser inputs {missing} are not connected")
        senders = [by_socket[n] for n in fuser.input_names]
    else:
        # Haystack feeds a variadic socket in the alphabetical order of the sending components.
        senders = sorted((sender, out) for _, sender, out in incoming)
    if len(senders) != 2:
        raise ValueError(f"fusion tuning supports two input lists, the fuser has {len(senders)}")
    return fuser_name, fuser, senders


def tune_fusion(
    pipeline: Any,
    dev: EvalDataset,
    *,
    modes: Sequence[str] = DEFAULT_MODES,
    objective: str | None = None,
    top_k: int = 100,
    fuser_name: str | None = None,
    show_progress: bool = True,
    apply: bool = True,
) -> TuningResult:
    """Pick the fuser's mode and weights that maximise ``objective`` on ``dev``.

    :param pipeline: a Haystack pipeline with one ``HybridScoreFuser`` fed by two retrievers.
    :param dev: the tuning split (``split == "test"`` is refused).
    :param modes: fusion modes to try.
    :param objective: summary metric to maximise (default ``top20`` for DPR, ``ndcg@10`` for BEIR).
    :param top_k: depth of the retrievers' lists and of the fused list (both ``top_k`` and ``depth`` of
        :mod:`spart.pipelines.running`).
    :param fuser_name: which fuser, if the pipeline has several.
    :param show_progress: progress bar while running the pipeline.
    :param apply: set the best mode/weights on the pipeline's fuser.
    :returns: the :class:`TuningResult` (every candidate's dev scores, and the best).
    """
    from spart.fusion import fuse

    if dev.split == "test":
        raise ValueError("fusion weights must be tuned on a dev/train split, not on test")
    objective = objective or ("top20" if dev.kind == DPR else "ndcg@10")
    ks = tuple(sorted(set(DEFAULT_KS) | ({int(objective[3:])} if objective.startswith("top") else set())))
    metrics = tuple(dict.fromkeys(list(DEFAULT_BEIR_METRICS) + ([objective] if dev.kind != DPR else [])))
    name, fuser, senders = find_fuser(pipeline, fuser_name)
    sender_names = [s for s, _ in senders]
    runs = run_pipeline(
        pipeline,
        [q.text for q in dev.queries],
        top_k=top_k,
        depth=top_k,
        output=name,
        include_outputs_from=sender_names,
        show_progress=show_progress,
        desc="dev queries",
    )
    lists = [[r.extra[s] for s in sender_names] for r in runs]
    corpus_texts = None
    if dev.kind == DPR:
        corpus_texts = texts_by_id(dev, {d for per_q in lists for ranked in per_q for d, _ in ranked})

    candidates: list[FusionCandidate] = []
    for mode, weights in candidate_grid(modes):
        rankings = []
        for per_query in lists:
            fused = fuse(per_query, mode=mode, weights=weights, top_k=top_k, rrf_k=fuser.rrf_k)
            rankings.append(Retrieved([d for d, _ in fused], [s for _, s in fused], [None] * len(fused)))
        result = evaluate_rankings(
            dev,
            rankings,
            system=f"{mode}{weights}",
            ks=ks,
            metrics=metrics,
            corpus_texts=corpus_texts,
            with_curve=False,
            max_k=top_k,
        )
        if objective not in result.summary:
            raise ValueError(f"objective {objective!r} is not a metric of this data set ({sorted(result.summary)})")
        candidates.append(FusionCandidate(mode, list(weights), result.summary[objective], result.summary))
    best = max(
        enumerate(candidates),
        key=lambda ic: (ic[1].objective, sum(ic[1].summary.values()) / len(ic[1].summary), -ic[0]),
    )[1]
    if apply:
        fuser.mode = best.mode
        fuser.weights = list(best.weights)
    return TuningResult(name, sender_names, objective, dev.split, best, candidates)
