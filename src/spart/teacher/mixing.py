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

from spart.fusion import interpolate_zscores


class BaseInterpolatedTeacher:
    """``score_topk`` = per-question ``(1 - w) * z(teacher) + w * z(base q . p)``.

    :param teacher: anything with ``score_topk(questions, passages) -> (B, K)`` (a
        :class:`~spart.teacher.QuestionLikelihoodScorer`, whose score cache keeps the raw LM scores so runs with
        other weights reuse them, or an :class:`~spart.teacher.EncoderScorer`: a larger encoder mixed with the
        base).
    :param encoder: the frozen base retriever (a :class:`~spart.encoders.DualEncoder`, eval mode), scored through
        :class:`~spart.teacher.encoder.EncoderScorer` (embeddings cached by question text and passage id).
    :param weight: ``w`` in [0, 1].
    :param batch_size: encoding batch size.

    Usage::

        teacher = BaseInterpolatedTeacher(scorer, DualEncoder.load(packaged_minilm_path()), weight=0.5)
        teacher.score_topk(["what is a tuple?"], [[passage_a, passage_b]])   # (1, 2) array
    """

    def __init__(self, teacher: Any, encoder: Any, weight: float, batch_size: int = 64) -> None:
        from spart.teacher.encoder import EncoderScorer

        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"base_weight must be in [0, 1], got {weight}")
        self.teacher, self.encoder, self.weight, self.batch_size = teacher, encoder, float(weight), batch_size
        self._base = EncoderScorer.from_encoder(encoder, batch_size=batch_size)

    @property
    def stats(self) -> dict[str, int]:
        return getattr(self.teacher, "stats", {})

    @property
    def fingerprint(self) -> str | None:
        inner = getattr(self.teacher, "fingerprint", None)
        return None if inner is None else f"{inner}+base{self.weight:g}:{self.encoder.fingerprint}"

    def base_scores(self, questions: Sequence[str], passages: Sequence[Sequence[Any]]) -> np.ndarray:
        """``(B, K)`` inner products of the base encoder's question and passage embeddings."""
        return self._base.score_topk(questions, passages)

    def score_topk(self, questions: Sequence[str], passages: Sequence[Sequence[Any]]) -> np.ndarray:
        lm = np.asarray(self.teacher.score_topk(questions, passages), dtype=np.float64)
        base = self.base_scores(questions, passages)
        if lm.shape != base.shape:
            raise ValueError(f"the teacher returned scores of shape {lm.shape}, want {base.shape}")
        mixed = [interpolate_zscores(lm[i].tolist(), base[i].tolist(), self.weight) for i in range(len(lm))]
        return np.asarray(mixed, dtype=np.float32)
