"""Question-likelihood teacher (UPR / ART): a frozen LM's log p(question | passage), with a SQLite score cache;
or a frozen second encoder's inner products (:class:`EncoderScorer`).

Passages are :class:`spart.data.Passage`, or anything :func:`spart.data.as_passage` reads.

Names are imported lazily so ``import spart.teacher`` does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "QuestionLikelihoodScorer": "spart.teacher.likelihood",
        "ScoreCache": "spart.teacher.cache",
        "EncoderScorer": "spart.teacher.encoder",
        "is_encoder_model": "spart.teacher.encoder",
        "PromptTemplate": "spart.teacher.prompts",
        "default_template": "spart.teacher.prompts",
        "packaged_smollm2_path": "spart.teacher.loading",
    },
)

if TYPE_CHECKING:
    from spart.teacher.cache import ScoreCache
    from spart.teacher.encoder import EncoderScorer, is_encoder_model
    from spart.teacher.likelihood import QuestionLikelihoodScorer
    from spart.teacher.loading import packaged_smollm2_path
    from spart.teacher.prompts import PromptTemplate, default_template
