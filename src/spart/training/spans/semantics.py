"""What recurring-span mining for SPIDER pre-training computes (Ram et al. 2022, "Learning to Retrieve Passages
without Supervision", section 3 and ``preprocess_corpus.py`` of oriram/spider): the tokenizer, the mining
config and the result types.

Semantics (every item is a field of :class:`SpanMiningConfig`, default in brackets):

- **Documents.** A document is a run of *consecutive* passages with the same key: the title (DPR
  convention), or the part of the title before ``title_separator`` [None: the whole title]. In DPR and
  BEIR dumps all passages of one document are consecutive, so documents stream with memory bounded by the
  largest document. A key that reappears later, non-consecutively, starts a *new* document (mined on its
  own); this is not detected, since detecting it would need memory proportional to the number of
  documents. Optionally the last passage of every document is dropped first (``drop_last_passage``
  [False]; DPR's 100-word split makes it wrap around to the article's start). Documents with fewer than
  ``min_document_passages`` [3] passages (counted after the drop) are skipped.
- **Tokens.** ``re.findall(r"[^\\W_]+|\\S", text)``: runs of letters/digits, and every other non-space
  character on its own. A token may be part of a span only if ``tok.isalpha() or tok.isdigit()``. Spans
  are matched lowercased.
- **Candidate spans** have ``min_span_length``..``max_span_length`` [2..10] tokens (inclusive), are not all
  stopwords, and neither start nor end with a stopword (``stopwords`` [NLTK's English list, see
  :mod:`spart.training.stopwords`]). A 1-token span (only with ``min_span_length=1``) must also be
  capitalised (``tok[0].isupper()``) or a 4-digit number.
- **Recurring:** the span occurs in at least ``min_span_passages`` [2] distinct passages of the document.
- **Maximal only** (``maximal_only`` [True]): a recurring span is dropped when a longer recurring span
  contains every one of its occurrences (same passage, ``long.start <= short.start`` and
  ``short.end <= long.end``).
- **Output**: per document, clusters ``{span, occurrences: [(passage_id, token_start, token_end)]}``
  with *all* occurrences of the span in the document (also repeated ones within one passage), sorted by
  position; clusters sorted by first occurrence, then length. Token offsets index the token list above.

Deviations from the reference implementation (``preprocess_corpus.py``):

- The reference uses spaCy tokens and then converts offsets to BERT word pieces; we use the regex tokens
  above (no spaCy) and keep offsets in those tokens; :mod:`spart.training.spider_examples` maps them back to
  character offsets.
- Its stopword set is a 153-word variant (see :mod:`spart.training.stopwords`), and its 1-token spans skip
  the stopword test ("The" can be a span there, not here).
- Its loop ``range(i + min, min(i + max, len))`` makes the longest span ``max - 1`` tokens and never lets
  a span end at a passage's last token; we use the stated inclusive bounds.
- It always drops the last passage (we make it an option, default off), and its maximality filter
  compares span *strings* (``short in long``) with equal occurrence counts, pairing occurrences by list
  position; we use the occurrence-containment definition above.
- It drops clusters without a negative passage at this stage; we keep them and leave that choice to
  :class:`spart.training.spider_examples.SpiderExamples` (``require_negative``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from spart.training.stopwords import NLTK_ENGLISH_STOPWORDS

TOKEN_PATTERN = re.compile(r"[^\W_]+|\S")


def tokenize(text: str) -> list[str]:
    """The mining tokenizer: ``re.findall(r"[^\\W_]+|\\S", text)``."""
    return TOKEN_PATTERN.findall(text)


def token_char_spans(text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of every token of :func:`tokenize`, for mapping token offsets to text."""
    return [match.span() for match in TOKEN_PATTERN.finditer(text)]


@dataclass(frozen=True)
class SpanMiningConfig:
    """What counts as a recurring span; see the module docstring for the exact semantics."""

    min_span_length: int = 2
    max_span_length: int = 10
    min_document_passages: int = 3
    drop_last_passage: bool = False
    min_span_passages: int = 2
    maximal_only: bool = True
    title_separator: str | None = None
    stopwords: frozenset[str] = field(default=NLTK_ENGLISH_STOPWORDS, repr=False)

    def __post_init__(self) -> None:
        if self.min_span_length < 1:
            raise ValueError(f"min_span_length must be >= 1, got {self.min_span_length}")
        if self.max_span_length < self.min_span_length:
            raise ValueError(
                f"max_span_length ({self.max_span_length}) must be >= min_span_length ({self.min_span_length})"
            )
        if self.max_span_length > 32:
            raise ValueError(f"max_span_length must be <= 32, got {self.max_span_length}")
        if self.min_document_passages < 1:
            raise ValueError(f"min_document_passages must be >= 1, got {self.min_document_passages}")
        if self.min_span_passages < 1:
            raise ValueError(f"min_span_passages must be >= 1, got {self.min_span_passages}")
        if self.title_separator == "":
            raise ValueError("title_separator must be None or a non-empty string")
        object.__setattr__(self, "stopwords", frozenset(self.stopwords))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stopwords as a digest), recorded with outputs so a resume can check it."""
        digest = hashlib.sha256("\n".join(sorted(self.stopwords)).encode()).hexdigest()[:16]
        return {
            "min_span_length": self.min_span_length,
            "max_span_length": self.max_span_length,
            "min_document_passages": self.min_document_passages,
            "drop_last_passage": self.drop_last_passage,
            "min_span_passages": self.min_span_passages,
            "maximal_only": self.maximal_only,
            "title_separator": self.title_separator,
            "stopwords_sha256": digest,
        }

    def document_key(self, title: str) -> str:
        """The document a passage with this title belongs to."""
        if self.title_separator is None:
            return title
        return title.split(self.title_separator, 1)[0]


class SpanCluster(NamedTuple):
    """One recurring span of a document and all its occurrences ``(passage_id, token_start, token_end)``.

    A named tuple rather than a dataclass: miners create hundreds of thousands of them per second.
    """

    span: str
    occurrences: tuple[tuple[str, int, int], ...]

    @property
    def passage_ids(self) -> list[str]:
        """Distinct passages containing the span, in document order."""
        return list(dict.fromkeys(pid for pid, _, _ in self.occurrences))


@dataclass
class DocumentSpans:
    """The mining result for one document: its (kept) passages and its clusters."""

    document: str
    passage_ids: list[str]
    clusters: list[SpanCluster]

    def to_json(self) -> dict[str, Any]:
        return {
            "document": self.document,
            "passage_ids": self.passage_ids,
            "clusters": [{"span": c.span, "occurrences": [list(o) for o in c.occurrences]} for c in self.clusters],
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> DocumentSpans:
        return cls(
            document=record["document"],
            passage_ids=list(record["passage_ids"]),
            clusters=[
                SpanCluster(span=c["span"], occurrences=tuple((o[0], int(o[1]), int(o[2])) for o in c["occurrences"]))
                for c in record["clusters"]
            ],
        )
