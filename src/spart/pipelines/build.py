"""Build a `FaissDocumentStore` directory from a stream of documents, and record how it was built.

Used by ``spart index`` and ``spart demo``. Documents are embedded and written chunk by chunk into an on-disk
store (the corpus is never held in memory). The store is built in a temporary sibling directory and swapped
into place only when complete, so an interrupted build leaves any previous store untouched.

Next to the store's own files, ``spart-build.json`` records the document embedder (its serialised form),
the resolved model location and the encoder's fingerprint, so that a query pipeline can embed questions with
the same model the passages were embedded with (see :func:`spart.pipelines.load_pipeline`).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from haystack import Document

from spart.atomic import replace_directory
from spart.components.embedders.methods import embedder_type, method_and_role

BUILD_INFO_FILE = "spart-build.json"
BUILD_INFO_FORMAT = 1

# Init parameters of a document embedder that mean nothing to a text embedder.
DOCUMENT_ONLY_PARAMS = ("batch_size", "progress_bar", "title_field")


def _chunks(items: Iterable[Document], size: int) -> Iterator[list[Document]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def build_store(
    documents: Iterable[Document],
    store_dir: str | os.PathLike,
    embedder: Any = None,
    *,
    total: int | None = None,
    chunk_size: int = 256,
    factory: str = "Flat",
    overwrite: bool = False,
    progress: bool = True,
    corpus_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Embed ``documents`` and save them as a `FaissDocumentStore` directory (or a pgvector table).

    :param documents: any iterable of documents with ``content`` (and ``meta["title"]``); consumed once,
        ``chunk_size`` at a time.
    :param store_dir: the store directory to create (or replace, with ``overwrite``), or a PostgreSQL URL
        ``postgresql://...#table``: the documents then go into that pgvector table (see
        :mod:`spart.pipelines.pgvector`; ``factory`` does not apply).
    :param embedder: a Spider/ART *document* embedder; ``None``: ``SpiderDocumentEmbedder()`` (the packaged
        MiniLM). Its own progress bar is best turned off: this function shows one for the whole corpus.
    :param total: number of documents, if known (for the progress bar only).
    :param chunk_size: documents embedded and written per step (memory is bounded by it).
    :param factory: FAISS index factory string of the store (``"Flat"`` = exact search).
    :param overwrite: replace an existing store at ``store_dir``; without it an existing path is an error.
    :param progress: show a progress bar.
    :param corpus_info: extra facts about the corpus recorded in ``spart-build.json`` (source, limit...).
    :returns: the build information written to ``spart-build.json``.
    :raises FileExistsError: if ``store_dir`` (or the table) exists and ``overwrite`` is false.
    :raises ValueError: if the corpus is empty or a document cannot be embedded/stored.
    """
    from tqdm.auto import tqdm

    from spart.pipelines.pgvector import build_pgvector_store, is_database_url

    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    to_database = is_database_url(store_dir)
    target = Path(store_dir)
    if not to_database and target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; choose another directory or overwrite it")
    if embedder is None:
        from spart.components.embedders import SpiderDocumentEmbedder

        embedder = SpiderDocumentEmbedder(progress_bar=False)
    embedder.warm_up()
    encoder = embedder.encoder
    info = {
        "format": BUILD_INFO_FORMAT,
        "embedder": embedder.to_dict(),
        "resolved_model": embedder.resolved_model,
        "fingerprint": encoder.fingerprint,
        "embedding_dim": encoder.embedding_dim,
        "documents": 0,
        "corpus": corpus_info or {},
    }
    started = time.perf_counter()

    def embedded_chunks() -> Iterator[list[Document]]:
        bar = tqdm(total=total, desc="indexing passages", unit="passage", disable=not progress, smoothing=0.05)
        try:
            for chunk in _chunks(documents, chunk_size):
                yield embedder.run(chunk)["documents"]
                info["documents"] += len(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
        if info["documents"] == 0:
            raise ValueError("the corpus holds no documents to index")
        seconds = time.perf_counter() - started
        info["seconds"] = round(seconds, 2)
        info["passages_per_second"] = round(info["documents"] / seconds, 1) if seconds > 0 else None

    if to_database:
        build_pgvector_store(os.fspath(store_dir), embedded_chunks(), info, overwrite=overwrite)
        return info

    from spart.components.document_stores import FaissDocumentStore

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; a store directory is ordinary data
        store = FaissDocumentStore(path=str(staging), embedding_dim=encoder.embedding_dim, factory=factory)
        for chunk in embedded_chunks():
            store.write_documents(chunk)
        store.save()  # checkpoint the derived indexes: opening the store loads them instead of rebuilding
        store.close()
        (staging / BUILD_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return info


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_build_info(store_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The ``spart-build.json`` of a store built by :func:`build_store`; ``None`` if the store has none.

    For a PostgreSQL URL, the record saved with the table.

    :raises ValueError: if the file exists but is not valid JSON of a known format.
    """
    from spart.pipelines.pgvector import is_database_url, read_pgvector_build_info

    if is_database_url(store_dir):
        return read_pgvector_build_info(os.fspath(store_dir))
    path = Path(store_dir) / BUILD_INFO_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is corrupt: {error}") from error
    if not isinstance(info, dict) or info.get("format") != BUILD_INFO_FORMAT or "embedder" not in info:
        raise ValueError(f"{path} is not a spart build record of format {BUILD_INFO_FORMAT}")
    return info


def text_embedder_spec(info: dict[str, Any]) -> dict[str, Any]:
    """The serialised text embedder matching the document embedder recorded in ``info``.

    :returns: ``{"type": ..., "init_parameters": {...}}`` for the SPIDER/ART text embedder with the same
        model and encoder settings.
    :raises ValueError: if the recorded embedder is not one of spart's document embedders.
    """
    embedder = info["embedder"]
    found = method_and_role(embedder.get("type"))
    if found is None or found[1] != "document":
        raise ValueError(f"the store was embedded with {embedder.get('type')!r}, which has no known text embedder")
    params = {k: v for k, v in embedder.get("init_parameters", {}).items() if k not in DOCUMENT_ONLY_PARAMS}
    return {"type": embedder_type(found[0], "text"), "init_parameters": params}
