"""A teacher whose scores are interpolated with a frozen base retriever's: ART's target for adapting an encoder
that is already good.

ART moves the student toward the teacher's ranking of its top-K; when the LM alone ranks worse than the encoder
being adapted (SmolLM2 vs all-MiniLM-L6-v2 on pydocs), that pulls the student down. The per-query z-score
interpolation of the LM's score with the *initial* encoder's score ranks better than either on such corpora
(:func:`spart.fusion.interpolate_zscores`; ``spart audit`` measures it on pseudo-labels), so using it as the target
keeps what the base model knows while taking the LM's corrections. **Deviation from ART**, which distils the
LM's scores alone; ``teacher.base_weight: 0`` is ART's target.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from spart.data.passages import as_passage
from spart.fusion import interpolate_zscores


class BaseInterpolatedTeacher:
    """``score_topk`` = per-question ``(1 - w) * z(teacher) + w * z(base q . p)``.

    :param teacher: anything with ``score_topk(questions, passages) -> (B, K)`` (a
        :class:`~spart.teacher.QuestionLikelihoodScorer`; its score cache keeps the raw LM scores, so runs with
        other weights reuse them).
    :param encoder: the frozen base retriever (a :class:`~spart.encoders.DualEncoder`, eval mode); its query and
        passage embeddings are cached by question text and passage id (at most the evidence, as ART's index).
    :param weight: ``w`` in [0, 1].
    :param batch_size: encoding batch size.

    Usage::

        teacher = BaseInterpolatedTeacher(scorer, DualEncoder.load(packaged_minilm_path()), weight=0.5)
        teacher.score_topk(["what is a tuple?"], [[passage_a, passage_b]])   # (1, 2) array
    """

    def __init__(self, teacher: Any, encoder: Any, weight: float, batch_size: int = 64) -> None:
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"base_weight must be in [0, 1], got {weight}")
        self.teacher, self.encoder, self.weight, self.batch_size = teacher, encoder, float(weight), batch_size
        self._queries: dict[str, np.ndarray] = {}
        self._passages: dict[str, np.ndarray] = {}

    @property
    def stats(self) -> dict[str, int]:
        return getattr(self.teacher, "stats", {})

    @property
    def fingerprint(self) -> str | None:
        inner = getattr(self.teacher, "fingerprint", None)
        return None if inner is None else f"{inner}+base{self.weight:g}:{self.encoder.fingerprint}"

    def base_scores(self, questions: Sequence[str], passages: Sequence[Sequence[Any]]) -> np.ndarray:
        """``(B, K)`` inner products of the base encoder's question and passage embeddings."""
        rows = [[as_passage(p) for p in row] for row in passages]
        new_q = [q for q in dict.fromkeys(questions) if q not in self._queries]
        if new_q:
            for q, e in zip(new_q, self.encoder.encode_queries(new_q, batch_size=self.batch_size)):
                self._queries[q] = e
        new_p = {p.id: p for row in rows for p in row if p.id not in self._passages}
        if new_p:
            items = list(new_p.values())
            embedded = self.encoder.encode_passages(
                [p.text for p in items], [p.title or "" for p in items], batch_size=self.batch_size
            )
            for p, e in zip(items, embedded):
                self._passages[p.id] = e
        q = np.stack([self._queries[q] for q in questions])  # (B, d)
        p = np.stack([np.stack([self._passages[x.id] for x in row]) for row in rows])  # (B, K, d)
        return np.einsum("bd,bkd->bk", q, p).astype(np.float32)

    def score_topk(self, questions: Sequence[str], passages: Sequence[Sequence[Any]]) -> np.ndarray:
        lm = np.asarray(self.teacher.score_topk(questions, passages), dtype=np.float64)
        base = self.base_scores(questions, passages)
        if lm.shape != base.shape:
            raise ValueError(f"the teacher returned scores of shape {lm.shape}, want {base.shape}")
        mixed = [interpolate_zscores(lm[i].tolist(), base[i].tolist(), self.weight) for i in range(len(lm))]
        return np.asarray(mixed, dtype=np.float32)
