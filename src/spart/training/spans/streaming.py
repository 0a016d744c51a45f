"""Mining a passage stream in bounded memory: documents are grouped into batches of about ``batch_passages``
passages, and batches are mined in order in a process pool with at most ``2 * workers`` batches in flight, so
memory is bounded by the batch (or the largest document), never the corpus."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from spart.training.spans.documents import iter_documents, select_passages
from spart.training.spans.kernel import mine_documents
from spart.training.spans.semantics import DocumentSpans, SpanMiningConfig


def mine_payload(payload: tuple[list[tuple[str, list[tuple[str, str]]]], SpanMiningConfig]) -> list[DocumentSpans]:
    documents, config = payload
    return mine_documents(documents, config)


def document_batches(
    documents: Iterable[tuple[str, Sequence[Any]]], config: SpanMiningConfig, batch_passages: int
) -> Iterator[tuple[list[tuple[str, list[tuple[str, str]]]], int, int]]:
    """Group documents into batches of about ``batch_passages`` passages.

    :returns: ``(eligible documents as (key, [(id, text)]), documents consumed, passages consumed)``;
        the counts include skipped documents, so progress can be recorded after each batch.
    """
    batch: list[tuple[str, list[tuple[str, str]]]] = []
    n_docs = n_passages = batch_size = 0
    for key, passages in documents:
        n_docs += 1
        n_passages += len(passages)
        selected = select_passages(passages, config)
        if selected is not None:
            batch.append((key, [(p.id, p.text) for p in selected]))
            batch_size += len(selected)
        if batch_size >= batch_passages:
            yield batch, n_docs, n_passages
            batch, n_docs, n_passages, batch_size = [], 0, 0, 0
    if n_docs:
        yield batch, n_docs, n_passages


def mine_batches(
    batches: Iterable[tuple[list, int, int]],
    config: SpanMiningConfig,
    workers: int,
    function: Callable[[Any], Any] = mine_payload,
) -> Iterator[tuple[Any, int, int]]:
    """Mine batches in order, in a process pool with at most ``2 * workers`` batches in flight."""
    if workers <= 1:
        for documents, n_docs, n_passages in batches:
            yield function((documents, config)), n_docs, n_passages
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn" if os.name != "posix" else "fork")
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for documents, n_docs, n_passages in batches:
            pending.append((pool.apply_async(function, ((documents, config),)), n_docs, n_passages))
            if len(pending) >= 2 * workers:
                result, d, p = pending.popleft()
                yield result.get(), d, p
        while pending:
            result, d, p = pending.popleft()
            yield result.get(), d, p


def mine_spans(
    passages: Iterable[Any],
    config: SpanMiningConfig | None = None,
    *,
    workers: int = 1,
    batch_passages: int = 2048,
) -> Iterator[DocumentSpans]:
    """Mine recurring spans from a passage stream (objects with ``id``, ``text``, ``title``).

    :param passages: passages in corpus order (all passages of a document consecutive).
    :param config: the mining semantics (defaults: :class:`SpanMiningConfig`).
    :param workers: processes; 1 mines in this process.
    :param batch_passages: passages per unit of work (bounds memory together with ``workers``).
    :returns: an iterator of :class:`DocumentSpans`, one per *eligible* document, in corpus order.
    """
    config = config or SpanMiningConfig()
    if batch_passages < 1:
        raise ValueError(f"batch_passages must be >= 1, got {batch_passages}")
    batches = document_batches(iter_documents(passages, config), config, batch_passages)
    for records, _, _ in mine_batches(batches, config, workers):
        yield from records
