"""Fusers: HybridScoreFuser merges the ranked lists of several retrievers (see spart.fusion for formulas).

Names load lazily, so importing this package does not import Haystack.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {"HybridScoreFuser": ".hybrid_score_fuser"})
