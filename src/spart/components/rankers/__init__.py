"""Rankers: QuestionLikelihoodRanker reranks documents by a frozen LM's log p(question | passage) (UPR);
EncoderRanker by a second, frozen encoder's inner product.

Names load lazily, so importing this package does not import Haystack or torch.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__, {"QuestionLikelihoodRanker": ".question_likelihood_ranker", "EncoderRanker": ".encoder_ranker"}
)
