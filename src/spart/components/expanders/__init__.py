"""Query expanders: AnswerQueryExpander has a frozen LM answer the query closed-book (GAR / HyDE), for a text
embedder's ``expansion`` input.

Names load lazily, so importing this package does not import Haystack or torch.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {"AnswerQueryExpander": ".answer_query_expander"})
