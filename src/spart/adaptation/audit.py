"""The label-free audit: how the base encoder, BM25, their hybrid and the base reranked by each candidate teacher
(alone and interpolated with the base score) rank on a data set, and whether ART with that teacher is expected
to help.

Run it on ``pseudo-dev`` (generated questions, pseudo-qrels = the passage each was written from: no human
label) to decide, and on a real test set to check how well the pseudo-labels predict the real ordering.

ART moves the student toward the teacher's ranking of its top-K, so ART can only be expected to lift the student
where *the teacher reranking the student's own top-K* beats the student: that is the comparison the verdict
rests on. Biases of the pseudo-labels (see docs/adaptation.md): one relevant passage per question (others that
answer it count as misses), questions written from a passage share its words (lexical systems look better), and
an LM judging questions an LM wrote may prefer its own phrasing; the round-trip filter keeps only questions the
base encoder can find, which favours the base.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_WEIGHTS = (0.0, 0.25, 0.5, 0.75)
# Teacher passage budget of the audit, and of everything that reuses its scores (ART's teacher, the rerank
# pipeline `spart adapt` writes): the same budget gives the same teacher fingerprint, so the score cache is shared.
TEACHER_PASSAGE_TOKENS = 256


@dataclass(frozen=True)
class TeacherSpec:
    """A candidate teacher: a label for tables, and the LM (``None`` = the packaged SmolLM2) or, when ``model`` is
    an encoder directory (:func:`spart.teacher.is_encoder_model`), a second encoder scoring by inner product."""

    label: str
    model: str | None = None
    gguf_file: str | None = None

    @property
    def is_encoder(self) -> bool:
        """Whether this teacher is an encoder (scored by :class:`~spart.teacher.EncoderScorer`), not an LM."""
        from spart.teacher.encoder import is_encoder_model

        return is_encoder_model(self.model)

    def rerank_pipeline(
        self,
        *,
        weight: float = 0.0,
        batch_size: int = 16,
        cache_path: str | None = None,
        max_passage_tokens: int = TEACHER_PASSAGE_TOKENS,
    ) -> tuple[str, dict[str, Any]]:
        """The packaged rerank pipeline for this teacher and its ranker's init parameters: ``dense_rerank_qa``
        (QuestionLikelihoodRanker: ``batch_size`` pairs per LM pass, the score cache, the passage budget) or, for an
        encoder, ``dense_encoder_rerank_qa`` (EncoderRanker, which needs neither cache nor budget: the encoder's
        own passage length applies)."""
        if self.is_encoder:
            return "dense_encoder_rerank_qa", {"model": self.model, "retriever_weight": float(weight)}
        ranker = {
            "model": self.model,
            "gguf_file": self.gguf_file,
            "retriever_weight": float(weight),
            "batch_size": batch_size,
            "max_passage_tokens": max_passage_tokens,
            "cache_path": cache_path,
        }
        return "dense_rerank_qa", ranker

    @classmethod
    def parse(cls, text: str) -> TeacherSpec:
        """``"label=path"``, ``"path"`` (labelled by its name) or ``"smollm2"`` (the packaged default)."""
        label, sep, model = text.partition("=")
        if not sep:
            model, label = text, text.rstrip("/").split("/")[-1]
        if not label or not model:
            raise ValueError(f"a teacher is LABEL=MODEL or MODEL, got {text!r}")
        return cls(label, None if model in ("smollm2", "default") else model)


@dataclass
class AuditReport:
    """The audit of one data set: a row per system and a verdict per teacher."""

    dataset: str
    kind: str
    objective: str
    depth: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    fusion: dict[str, Any] | None = None
    verdicts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "kind": self.kind,
            "objective": self.objective,
            "depth": self.depth,
            "fusion": self.fusion,
            "rows": self.rows,
            "verdicts": self.verdicts,
        }

    def to_markdown(self, metrics: tuple[str, ...] | None = None) -> str:
        """A table (systems as rows) and one line of verdict per teacher."""
        if metrics is None:
            metrics = ("ndcg@10", "recall@20", "mrr@10") if self.kind == "beir" else ("top1", "top5", "top20")
        head = "| system | " + " | ".join(metrics) + f" | p vs base ({self.objective}) |"
        lines = [head, "|---" * (len(metrics) + 2) + "|"]
        for row in self.rows:
            cells = []
            for m in metrics:
                v = row["summary"].get(m)
                cells.append("–" if v is None else (f"{100 * v:.1f}" if self.kind == "dpr" else f"{v:.3f}"))
            p = row.get("p_value")
            lines.append(f"| {row['system']} | " + " | ".join(cells) + f" | {'' if p is None else f'{p:.3g}'} |")
        for teacher, v in self.verdicts.items():
            lines.append("")
            lines.append(f"- **{teacher}**: {v['text']}")
        return "\n".join(lines)


def objective_for(kind: str, depth: int) -> str:
    """The metric an audit judges by: nDCG@10 on BEIR sets; on DPR sets top-20 accuracy (what a reader reads)
    when the rerank depth is deeper than 20, else top-5 (a rerank of the top 20 cannot change top-20)."""
    if kind == "beir":
        return "ndcg@10"
    return "top20" if depth > 20 else "top5"


def verdict(base: float, best: float, p: float | None, label: str, system: str, objective: str) -> dict[str, Any]:
    """Whether ART with this teacher is expected to help, from the best rerank row against the base."""
    delta = best - base
    if delta > 0 and p is not None and p < 0.1:
        call, text = "help", "expected to help"
    elif delta > 0:
        call, text = "uncertain", "may help (the gain is not significant on these questions)"
    else:
        call, text = "no", "not expected to help (it does not rerank the base's candidates better)"
    p_text = "" if p is None else f", p = {p:.3g}"
    return {
        "call": call,
        "best_system": system,
        "delta": delta,
        "p_value": p,
        "text": f"ART with {label} {text}: best rerank {system} {objective} {best:.3f} vs base {base:.3f} "
        f"({delta:+.3f}{p_text}).",
    }


def run_audit(
    dataset: Any,
    *,
    model: str | None = None,
    method: str = "spider",
    teachers: list[TeacherSpec] | tuple[TeacherSpec, ...] = (),
    weights: tuple[float, ...] = DEFAULT_WEIGHTS,
    depth: int = 20,
    fusion: dict[str, Any] | None = None,
    cache_path: str | None = None,
    max_passage_tokens: int = TEACHER_PASSAGE_TOKENS,
    teacher_batch_size: int = 16,
    store: str | None = None,
    progress: bool = True,
) -> AuditReport:
    """Evaluate the audit's systems on ``dataset`` (an :class:`~spart.evaluation.datasets.EvalDataset`).

    :param model: the base dense encoder (``None`` = the packaged MiniLM).
    :param method: embedder family of ``model`` (``"spider"`` one tower, ``"art"`` two).
    :param teachers: candidate teachers; each reranks the base's top ``depth`` at every weight in ``weights``
        (``0`` = the teacher alone, UPR for an LM; ``w`` > 0 = z-score interpolation with the base score). An
        encoder teacher reranks through ``dense_encoder_rerank_qa``.
    :param depth: candidates reranked per question.
    :param fusion: ``{"mode": ..., "weights": [...]}`` for the hybrid; ``None`` = tuned on ``dataset`` (refused
        for a ``test`` split: tune on pseudo-dev and pass the result).
    :param cache_path: the teacher score cache (share it with ART so its first epoch reuses these scores).
    :returns: the :class:`AuditReport`; rows in order base, BM25, hybrid, then each teacher's reranks.
    """
    from spart.evaluation.evaluate import evaluate_pipeline
    from spart.evaluation.loading import load_any_pipeline
    from spart.evaluation.significance import baseline_significance
    from spart.evaluation.stores import ensure_store
    from spart.evaluation.tuning import find_fuser, tune_fusion

    if depth <= 0:
        raise ValueError(f"depth must be positive, got {depth}")
    for w in weights:
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"interpolation weights must be in [0, 1], got {w}")
    store = store or str(ensure_store(dataset, model=model, method=method, progress=progress))
    dense_args = {"store": store, "model": model, "method": method} if model else {"store": store}
    objective = objective_for(dataset.kind, depth)
    ks_full, ks_rerank = (1, 5, 20, 100), tuple(k for k in (1, 5, 20, 100) if k <= depth)
    results, rows = [], []

    def add(system: str, kind: str, pipeline, top_k: int, ks, **extra) -> None:
        result = evaluate_pipeline(
            pipeline, dataset, system=system, top_k=top_k, depth=top_k, ks=ks, show_progress=progress
        )
        results.append(result)
        rows.append({"system": system, "kind": kind, "summary": result.summary, **extra})

    add("base", "base", load_any_pipeline("dense_qa", **dense_args), 100, ks_full)
    add("bm25", "bm25", load_any_pipeline("bm25_qa", store=store), 100, ks_full)
    hybrid = load_any_pipeline("hybrid_qa", **dense_args)
    if fusion is None:
        tuned = tune_fusion(hybrid, dataset, show_progress=progress)
        fusion = {"mode": tuned.best.mode, "weights": list(tuned.best.weights), "tuned_on": dataset.name}
    else:
        _, fuser, _ = find_fuser(hybrid)
        fuser.mode, fuser.weights = fusion["mode"], list(fusion["weights"])
    add("hybrid", "hybrid", hybrid, 100, ks_full, fusion=fusion)

    for teacher in teachers:
        name, ranker = teacher.rerank_pipeline(
            batch_size=teacher_batch_size, cache_path=cache_path, max_passage_tokens=max_passage_tokens
        )
        pipeline = load_any_pipeline(name, **dense_args, components={"ranker": ranker})
        component = pipeline.get_component("ranker")
        for w in weights:
            component.retriever_weight = float(w)
            name = f"base + {teacher.label}" + (f" (w={w:g})" if w else "")
            add(name, "rerank", pipeline, depth, ks_rerank, teacher=teacher.label, weight=w)

    tests = baseline_significance(results, dataset)
    for row in rows[1:]:
        own = tests["p_values"][row["system"]]  # against the base, at every cut-off this row reports
        row["p_values"] = {metric: p for metric, p in own.items() if metric in row["summary"]}
        row["p_value"] = row["p_values"].get(objective)
    report = AuditReport(dataset.name, dataset.kind, objective, depth, rows, fusion)
    base_value = rows[0]["summary"][objective]
    for teacher in teachers:
        own = [r for r in rows if r.get("teacher") == teacher.label]
        best = max(own, key=lambda r: r["summary"][objective])
        report.verdicts[teacher.label] = dict(
            verdict(
                base_value, best["summary"][objective], best.get("p_value"), teacher.label, best["system"], objective
            ),
            weight=best["weight"],
        )
    return report
