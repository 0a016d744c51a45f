"""Documents of a passage stream: runs of consecutive passages with the same key, and which of their passages
are mined (see :mod:`spart.training.spans.semantics`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from spart.training.spans.semantics import SpanMiningConfig


def iter_documents(passages: Iterable[Any], config: SpanMiningConfig) -> Iterator[tuple[str, list[Any]]]:
    """Group consecutive passages (objects with ``id``, ``text``, ``title``) into documents.

    :returns: ``(document_key, passages)`` for every run of consecutive passages with the same key, before
        any filtering (a key that reappears later yields a second document).
    """
    key: str | None = None
    group: list[Any] = []
    for passage in passages:
        passage_key = config.document_key(passage.title)
        if group and passage_key != key:
            yield key, group  # type: ignore[misc]
            group = []
        key = passage_key
        group.append(passage)
    if group:
        yield key, group  # type: ignore[misc]


def select_passages(passages: Sequence[Any], config: SpanMiningConfig) -> Sequence[Any] | None:
    """Apply the last-passage drop and the minimum document size; ``None`` when the document is skipped."""
    if config.drop_last_passage:
        passages = passages[:-1]
    if len(passages) < config.min_document_passages:
        return None
    return passages
