"""Recurring-span mining for SPIDER pre-training, by seam:

- :mod:`~spart.training.spans.semantics`  what a recurring span is (the full specification, and where it
  deviates from the paper's code): tokenizer, :class:`SpanMiningConfig`, :class:`SpanCluster`,
  :class:`DocumentSpans`
- :mod:`~spart.training.spans.documents`  passages grouped into documents, and which passages are mined
- :mod:`~spart.training.spans.kernel`     the vectorised miner of a batch of documents
- :mod:`~spart.training.spans.tokens`     the tokenizer vectorised over a batch, with a per-process vocabulary
- :mod:`~spart.training.spans.streaming`  a passage stream mined batch by batch in a process pool
- :mod:`~spart.training.spans.files`      a corpus file mined into a span file (sharded, resumable) and read back
- :mod:`~spart.training.spans.reference`  the naive miner the kernel is tested against (never for real corpora)

Usage::

    from spart.training.spans import SpanMiningConfig, mine_spans_to_file, read_spans

    mine_spans_to_file("passages.tsv", "spans.jsonl.gz", SpanMiningConfig(), workers=4)
    for document in read_spans("spans.jsonl.gz"): ...
"""

from __future__ import annotations

from spart.training.spans.documents import iter_documents, select_passages
from spart.training.spans.files import MiningStats, mine_spans_to_file, parse_shard, read_spans
from spart.training.spans.kernel import mine_documents
from spart.training.spans.semantics import (
    TOKEN_PATTERN,
    DocumentSpans,
    SpanCluster,
    SpanMiningConfig,
    token_char_spans,
    tokenize,
)
from spart.training.spans.streaming import mine_spans

__all__ = [
    "TOKEN_PATTERN",
    "DocumentSpans",
    "MiningStats",
    "SpanCluster",
    "SpanMiningConfig",
    "iter_documents",
    "mine_documents",
    "mine_spans",
    "mine_spans_to_file",
    "parse_shard",
    "read_spans",
    "select_passages",
    "token_char_spans",
    "tokenize",
]
