"""Document stores for evaluation, built once per (corpus, encoder) and reused.

``ensure_store(dataset)`` returns a `FaissDocumentStore` directory holding the data set's corpus embedded by
the given document embedder (the packaged MiniLM by default). The store is built with
``spart.pipelines.build_store`` under ``<cache>/stores/<encoder fingerprint>/<corpus fingerprint>``, and the
passage embeddings come from :func:`spart.evaluation.cache.encode_corpus_cached`, so neither a second
evaluation nor a rebuild after deleting the store re-encodes unchanged passages.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from spart.data.readers import Passage, passages_to_documents
from spart.evaluation.cache import cache_root, corpus_fingerprint, encode_corpus_cached
from spart.evaluation.datasets import EvalDataset

logger = logging.getLogger(__name__)


class CachedDocumentEmbedder:
    """Wraps a spart document embedder so that documents of a known corpus take their vectors from the cache.

    It offers what ``build_store`` uses of an embedder (``warm_up``, ``encoder``, ``run``, ``to_dict``,
    ``resolved_model``); the build record therefore names the real embedder, and the store's query side
    is configured exactly as if that embedder had encoded every passage itself. Documents that are not in
    the corpus are passed to the real embedder.

    :param embedder: a Spider/ART document embedder.
    :param passages: the corpus, in order.
    :param cache_dir: cache root (default ``$SPART_CACHE`` or ``~/.cache/spart``).
    """

    def __init__(
        self,
        embedder: Any,
        passages: list[Passage],
        cache_dir: str | os.PathLike | None = None,
        corpus_fp: str | None = None,
    ):
        self.embedder = embedder
        self.passages = passages
        self.cache_dir = cache_dir
        self.corpus_fp = corpus_fp
        self._vectors: np.ndarray | None = None
        self._row: dict[str, int] = {}

    def warm_up(self) -> None:
        self.embedder.warm_up()
        if self._vectors is None:
            self._vectors = encode_corpus_cached(
                self.embedder.encoder,
                self.passages,
                self.cache_dir,
                corpus_fp=self.corpus_fp,
                batch_size=self.embedder.batch_size,
                show_progress=self.embedder.progress_bar,
            )
            self._row = {p.id: i for i, p in enumerate(self.passages)}

    @property
    def encoder(self):
        return self.embedder.encoder

    @property
    def resolved_model(self) -> str:
        return self.embedder.resolved_model

    def to_dict(self) -> dict[str, Any]:
        return self.embedder.to_dict()

    def run(self, documents: list) -> dict[str, list]:
        self.warm_up()
        rows = [self._row.get(doc.id) for doc in documents]
        if any(r is None for r in rows):
            return self.embedder.run(documents)
        return {"documents": [replace(doc, embedding=self._vectors[r].tolist()) for doc, r in zip(documents, rows)]}


def ensure_store(
    dataset: EvalDataset,
    model: str | None = None,
    method: str = "spider",
    passage_model: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """The store directory for ``dataset``'s corpus embedded with ``model``; built on first use.

    :param dataset: the evaluation data set (its corpus is indexed).
    :param model: dense model directory (``None``: the packaged MiniLM).
    :param method: ``"spider"`` (one shared tower) or ``"art"`` (separate towers) document embedder.
    :param passage_model: a separate passage tower, if any.
    :param cache_dir: cache root.
    :param progress: progress bars.
    :returns: the store directory (give it to ``load_pipeline(..., store=...)``).
    """
    from spart.components.embedders.methods import embedder_class
    from spart.pipelines import build_store

    embedder = embedder_class(method, "document")(model=model, passage_model=passage_model, progress_bar=progress)
    passages = list(dataset.passages())
    corpus_fp, count = corpus_fingerprint(passages)
    fingerprint = embedder.encoder.fingerprint
    target = cache_root(cache_dir) / "stores" / fingerprint / corpus_fp
    if (target / "spart-build.json").is_file():
        return target
    logger.info("building the document store for %s at %s", dataset.name, target)
    wrapped = CachedDocumentEmbedder(embedder, passages, cache_dir, corpus_fp)
    build_store(
        passages_to_documents(passages),
        target,
        wrapped,
        total=count,
        chunk_size=2048,
        overwrite=True,
        progress=progress,
        corpus_info={"path": str(dataset.corpus_path), "fingerprint": corpus_fp},
    )
    return target
