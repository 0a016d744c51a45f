"""Rankers: QuestionLikelihoodRanker reranks documents by a frozen LM's log p(question | passage) (UPR).

Names load lazily, so importing this package does not import Haystack or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {"QuestionLikelihoodRanker": "question_likelihood_ranker"}

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
