"""On-disk cache of encoded corpora, so re-running an evaluation never re-encodes unchanged passages.

Key: the encoder's ``passage_fingerprint`` (the passage tower's weights and the passage-side configuration: two
models that embed passages identically, e.g. a base model and its query-side fine-tuning, share an entry) and a
fingerprint of the corpus (sha256 over every passage's id, title and text, in order). Layout::

    <cache>/embeddings/<passage_fp>/<corpus_fp>/
        embeddings.npy   float32 (n_passages, dim), row i = passage i of the corpus, once complete
        meta.json        counts, dim, both fingerprints
        partial/         chunk files while encoding; an interrupted run resumes from the last whole chunk

Every file is written to a temporary name and moved into place with ``os.replace``, so a crash never
leaves a truncated file under a final name. The cache root is ``$SPART_CACHE`` or ``~/.cache/spart``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from spart.atomic import atomic_path, atomic_write, write_text_atomic
from spart.data.readers import Passage

logger = logging.getLogger(__name__)

DEFAULT_CHUNK = 4096


class PassageEncoder(Protocol):
    """What the cache needs from an encoder (``spart.encoders.DualEncoder`` satisfies it)."""

    @property
    def passage_fingerprint(self) -> str: ...

    def encode_passages(self, texts: Sequence[str], titles: Sequence[str] | None = None, **kwargs) -> np.ndarray: ...


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache directory: ``cache_dir`` if given, else ``$SPART_CACHE``, else ``~/.cache/spart``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SPART_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "spart"


def corpus_fingerprint(passages: Iterable[Passage]) -> tuple[str, int]:
    """sha256 (first 16 hex digits) over ids, titles and texts, streamed; returns ``(fingerprint, count)``."""
    digest = hashlib.sha256()
    count = 0
    for passage in passages:
        # Length-prefix each field so that ("ab", "c") and ("a", "bc") hash differently.
        for field in (passage.id, passage.title, passage.text):
            data = field.encode("utf-8")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        count += 1
    return digest.hexdigest()[:16], count


def _chunks(passages: Iterable[Passage], size: int) -> Iterable[list[Passage]]:
    chunk: list[Passage] = []
    for passage in passages:
        chunk.append(passage)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def encode_corpus_cached(
    encoder: PassageEncoder,
    passages: Sequence[Passage] | Iterable[Passage],
    cache_dir: str | os.PathLike | None = None,
    *,
    corpus_fp: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    batch_size: int = 32,
    show_progress: bool = True,
) -> np.ndarray:
    """Passage embeddings of a corpus, from the cache when this encoder already encoded this corpus.

    :param encoder: has ``fingerprint`` and ``encode_passages(texts, titles, batch_size=, show_progress=)``.
    :param passages: the corpus, in order (a list, or a re-iterable such as a reader's output wrapped in a
        list; it is iterated twice when ``corpus_fp`` is not given).
    :param cache_dir: cache root (default ``$SPART_CACHE`` or ``~/.cache/spart``).
    :param corpus_fp: the corpus fingerprint, if already computed.
    :param chunk_size: passages per resumable chunk.
    :param batch_size: encoder batch size.
    :param show_progress: show a progress bar while encoding.
    :returns: a read-only memory-mapped ``float32`` array ``(n_passages, dim)`` in corpus order.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if corpus_fp is None:
        if not isinstance(passages, Sequence):
            passages = list(passages)
        corpus_fp, _ = corpus_fingerprint(passages)
    model_fp = str(encoder.passage_fingerprint)
    directory = cache_root(cache_dir) / "embeddings" / model_fp / corpus_fp
    final = directory / "embeddings.npy"
    if final.is_file():
        logger.info("embedding cache hit: %s", final)
        return np.load(final, mmap_mode="r")

    partial = directory / "partial"
    partial.mkdir(parents=True, exist_ok=True)
    settings_file = partial / "settings.json"
    settings = {"chunk_size": chunk_size}
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings:
        # Chunks cut at other boundaries cannot be reused.
        shutil.rmtree(partial)
        partial.mkdir(parents=True)
    write_text_atomic(settings_file, json.dumps(settings))

    chunk_files: list[Path] = []
    count = 0
    for index, chunk in enumerate(_chunks(passages, chunk_size)):
        chunk_file = partial / f"chunk-{index:06d}.npy"
        chunk_files.append(chunk_file)
        count += len(chunk)
        if chunk_file.is_file():
            continue  # encoded by an earlier, interrupted run
        vectors = encoder.encode_passages(
            [p.text for p in chunk], [p.title for p in chunk], batch_size=batch_size, show_progress=show_progress
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape[0] != len(chunk):
            raise ValueError(f"encoder returned {vectors.shape[0]} vectors for {len(chunk)} passages")
        with atomic_write(chunk_file) as handle:
            np.save(handle, vectors)
        logger.info("encoded %d passages", count)
    if count == 0:
        raise ValueError("cannot encode an empty corpus")

    # Assemble into one file through a memory map, so memory stays bounded by a chunk.
    first = np.load(chunk_files[0], mmap_mode="r")
    dim = first.shape[1]
    with atomic_path(final) as tmp:  # open_memmap wants a file name, not a handle
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(count, dim))
        row = 0
        for chunk_file in chunk_files:
            block = np.load(chunk_file, mmap_mode="r")
            out[row : row + len(block)] = block
            row += len(block)
        out.flush()
        del out
    meta = {"passage_fingerprint": model_fp, "corpus_fingerprint": corpus_fp, "count": count, "dim": int(dim)}
    write_text_atomic(directory / "meta.json", json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(partial, ignore_errors=True)
    return np.load(final, mmap_mode="r")
