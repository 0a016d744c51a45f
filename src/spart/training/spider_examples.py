"""SPIDER training examples from mined recurring spans (Ram et al. 2022, section 3; ``train_dense_encoder.py``
``_create_pretraining_biencoder_input`` and ``query_transformations.py`` of oriram/spider).

For cluster ``i`` at epoch ``e`` (all draws from one generator seeded with ``(seed, e, i)``, so every
example can be regenerated on its own, e.g. for an exact resume):

1. shuffle the distinct passages that contain the span; the first is the *query passage*, the second the
   *positive* (as the reference does);
2. pick one occurrence of the span in the query passage, a window length ``L`` uniform in
   ``[min_window_tokens, max_window_tokens]`` (5..30) and, with probability ``remove_span_prob`` (0.5,
   the reference's ``keep_answer_prob=0.5``), remove the span;
3. window start ``q`` uniform in ``[max(0, s - L), min(e, n - L - (e - s))]`` for the span ``[s, e)`` of
   an ``n``-token passage (the reference's "random" transformation); keeping the span, the query is tokens
   ``[q, q + L)``; removing it, tokens ``[q, s)`` followed by as many tokens after ``e`` as make ``L``;
4. the negative is a uniformly drawn passage of the same document that does not contain the span, or
   ``None`` when every passage contains it.

Each example: ``{"query": str, "positive": Passage, "negative": Passage | None, "span": str,
"query_passage_id": str, "span_removed": bool}`` (:class:`spart.data.Passage` has ``id``, ``text``, ``title``).

Deviations from the reference, on purpose:

- Tokens are the mining tokenizer's (``[^\\W_]+|\\S``: words, numbers, single punctuation marks), not BERT
  word pieces, and the query is cut from the original text by character offsets (case and spacing kept;
  the two sides of a removed span are joined by one space); the reference decodes lowercased word pieces.
  A window of 5-30 of our tokens is therefore a little longer in text than 5-30 word pieces.
- The reference asserts the passage is long enough; here, if the passage has fewer than ``L`` tokens
  besides the span, ``L`` shrinks to what there is (a passage that *is* the span keeps it).
- As in the reference, only the chosen occurrence is removed: another occurrence of the span inside the
  window stays. The query has no title; positives and negatives keep theirs (the trainer encodes
  ``title [SEP] text`` for passages, as the reference's ``insert_titles=True``).
- The reference drops clusters without a negative at mining time; we keep them with ``negative=None``
  unless ``require_negative=True`` (the reference's behaviour). Negatives come from the document's mined
  passages (its last passage is excluded only if mining dropped it, as the reference always does).
- The reference reshuffles with Python's global ``random`` seeded per batch; we seed per example.

Passage lookup: :class:`InMemoryPassageLookup` keeps only the passages of documents that have clusters
(fine for the shared corpora: ~30k passages, tens of MB). For a 21M-passage Wikipedia use
:class:`SqlitePassageLookup` (a one-off SQLite copy of the corpus with an id index; memory stays flat and
each DataLoader worker opens its own connection).
"""

from __future__ import annotations

import os
import sqlite3
from array import array
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from torch.utils.data import Dataset

from spart.atomic import atomic_path
from spart.data import Passage, read_passages
from spart.training.spans import DocumentSpans, read_spans, token_char_spans


class PassageLookup(Protocol):
    """Anything that maps a passage id to a :class:`spart.data.Passage`."""

    def __getitem__(self, passage_id: str) -> Passage: ...


class InMemoryPassageLookup:
    """A dict of passages, optionally restricted to the ids a span file needs."""

    def __init__(self, passages: Mapping[str, Passage]):
        self._passages = dict(passages)

    @classmethod
    def from_corpus(cls, corpus: str | os.PathLike, ids: Iterable[str] | None = None) -> InMemoryPassageLookup:
        """Read ``corpus`` (DPR ``.tsv`` / BEIR ``.jsonl``), keeping only ``ids`` when given."""
        wanted = set(ids) if ids is not None else None
        return cls({p.id: p for p in read_passages(corpus) if wanted is None or p.id in wanted})

    def __getitem__(self, passage_id: str) -> Passage:
        try:
            return self._passages[passage_id]
        except KeyError:
            raise KeyError(f"passage {passage_id!r} is not in the corpus (span file and corpus do not match)") from None

    def __contains__(self, passage_id: object) -> bool:
        return passage_id in self._passages

    def __len__(self) -> int:
        return len(self._passages)


class SqlitePassageLookup:
    """Passages in a SQLite file (``id`` primary key): flat memory for any corpus size.

    :param path: the database, made with :meth:`build`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such passage database (build it with SqlitePassageLookup.build)")
        self._connection: sqlite3.Connection | None = None
        self._pid: int | None = None

    @classmethod
    def build(cls, corpus: str | os.PathLike, path: str | os.PathLike, batch: int = 10_000) -> SqlitePassageLookup:
        """Copy ``corpus`` into ``path`` (written to a temp file, then renamed; an existing file is reused)."""
        path = Path(path)
        if not path.exists():
            # SQLite takes a file name; an empty file (as atomic_path creates it) is an empty database to it.
            with atomic_path(path) as tmp:
                connection = sqlite3.connect(tmp)
                try:
                    connection.execute(
                        "CREATE TABLE passages (id TEXT PRIMARY KEY, title TEXT, text TEXT) WITHOUT ROWID"
                    )
                    rows: list[tuple[str, str, str]] = []
                    for passage in read_passages(corpus):
                        rows.append((passage.id, passage.title, passage.text))
                        if len(rows) >= batch:
                            connection.executemany("INSERT INTO passages VALUES (?, ?, ?)", rows)
                            rows = []
                    connection.executemany("INSERT INTO passages VALUES (?, ?, ?)", rows)
                    connection.commit()
                finally:
                    connection.close()
        return cls(path)

    def _db(self) -> sqlite3.Connection:
        # A connection must not cross a fork (DataLoader workers): reopen in every process.
        if self._connection is None or self._pid != os.getpid():
            self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._pid = os.getpid()
        return self._connection

    def __getitem__(self, passage_id: str) -> Passage:
        row = self._db().execute("SELECT title, text FROM passages WHERE id = ?", (passage_id,)).fetchone()
        if row is None:
            raise KeyError(f"passage {passage_id!r} is not in {self.path} (span file and corpus do not match)")
        return Passage(id=passage_id, text=row[1], title=row[0])

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_connection": None, "_pid": None}


class SpiderExamples(Dataset):
    """One SPIDER example per recurring-span cluster, regenerated deterministically per ``(seed, epoch, i)``.

    :param documents: mined documents (:func:`spart.training.spans.read_spans`).
    :param lookup: passage id -> :class:`spart.data.Passage`.
    :param seed: base seed.
    :param remove_span_prob: probability of removing the span from the query (reference: 0.5).
    :param min_window_tokens: shortest query window, in mining tokens (reference: 5).
    :param max_window_tokens: longest query window (reference: 30).
    :param require_negative: drop clusters whose document has no passage without the span (reference).

    Usage::

        lookup = InMemoryPassageLookup.from_corpus("wiki/passages.tsv")
        dataset = SpiderExamples(read_spans("wiki.jsonl.gz"), lookup, seed=0)
        dataset.set_epoch(3)
        example = dataset[17]   # {"query": ..., "positive": Passage, "negative": Passage | None, ...}
    """

    def __init__(
        self,
        documents: Iterable[DocumentSpans],
        lookup: PassageLookup,
        *,
        seed: int = 0,
        remove_span_prob: float = 0.5,
        min_window_tokens: int = 5,
        max_window_tokens: int = 30,
        require_negative: bool = False,
    ):
        if not 0.0 <= remove_span_prob <= 1.0:
            raise ValueError(f"remove_span_prob must be in [0, 1], got {remove_span_prob}")
        if not 1 <= min_window_tokens <= max_window_tokens:
            raise ValueError(
                f"need 1 <= min_window_tokens <= max_window_tokens, got {min_window_tokens}, {max_window_tokens}"
            )
        self.lookup = lookup
        self.seed = int(seed)
        self.epoch = 0
        self.remove_span_prob = float(remove_span_prob)
        self.min_window_tokens = int(min_window_tokens)
        self.max_window_tokens = int(max_window_tokens)
        self.require_negative = bool(require_negative)

        # Compact columnar storage (ints, not objects), so 10^7 clusters stay within a few hundred MB.
        index_of: dict[str, int] = {}
        self._passage_ids: list[str] = []
        # array("q") rather than lists while building: 8 bytes per value instead of ~36.
        doc_passages = array("q")
        doc_ptr = array("q", [0])
        cluster_doc = array("q")
        occ_ptr = array("q", [0])
        occ_passage = array("q")
        occ_start = array("q")
        occ_end = array("q")
        self._spans: list[str] = []
        self.skipped_clusters = 0

        def passage_index(pid: str) -> int:
            idx = index_of.get(pid)
            if idx is None:
                idx = index_of[pid] = len(self._passage_ids)
                self._passage_ids.append(pid)
            return idx

        for document in documents:
            doc_index = len(doc_ptr) - 1
            members = [passage_index(pid) for pid in document.passage_ids]
            member_set = set(members)
            added = False
            for cluster in document.clusters:
                passages = {pid for pid, _, _ in cluster.occurrences}
                if len(passages) < 2 or (self.require_negative and len(passages) >= len(member_set)):
                    self.skipped_clusters += 1
                    continue
                for pid, start, end in cluster.occurrences:
                    idx = passage_index(pid)
                    if idx not in member_set:
                        raise ValueError(
                            f"cluster {cluster.span!r}: passage {pid!r} is not a passage of {document.document!r}"
                        )
                    occ_passage.append(idx)
                    occ_start.append(start)
                    occ_end.append(end)
                occ_ptr.append(len(occ_passage))
                cluster_doc.append(doc_index)
                self._spans.append(cluster.span)
                added = True
            if added:
                doc_passages.extend(members)
                doc_ptr.append(len(doc_passages))
        self._doc_passages = np.frombuffer(doc_passages, dtype=np.int64).copy()
        self._doc_ptr = np.frombuffer(doc_ptr, dtype=np.int64).copy()
        self._cluster_doc = np.frombuffer(cluster_doc, dtype=np.int64).copy()
        self._occ_ptr = np.frombuffer(occ_ptr, dtype=np.int64).copy()
        self._occ_passage = np.frombuffer(occ_passage, dtype=np.int64).copy()
        self._occ_start = np.frombuffer(occ_start, dtype=np.int64).copy()
        self._occ_end = np.frombuffer(occ_end, dtype=np.int64).copy()

    # -- dataset protocol ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._spans)

    def set_epoch(self, epoch: int) -> None:
        """Examples of ``epoch`` (other passages, windows and negatives for every cluster)."""
        self.epoch = int(epoch)

    @property
    def passage_ids(self) -> list[str]:
        """Every passage id the examples may use (e.g. to build a restricted lookup)."""
        return list(self._passage_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} out of range for {len(self)} clusters")
        index = index % len(self)
        return self.example(index, self.epoch)

    def example(self, index: int, epoch: int) -> dict[str, Any]:
        """The example of cluster ``index`` at ``epoch`` (independent of ``set_epoch``)."""
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        lo, hi = self._occ_ptr[index], self._occ_ptr[index + 1]
        occ_passage = self._occ_passage[lo:hi]
        passages = list(dict.fromkeys(occ_passage.tolist()))
        order = rng.permutation(len(passages))
        query_passage, positive_passage = passages[order[0]], passages[order[1]]

        mine = np.flatnonzero(occ_passage == query_passage)
        chosen = lo + mine[rng.integers(len(mine))]
        span_start, span_end = int(self._occ_start[chosen]), int(self._occ_end[chosen])
        length = int(rng.integers(self.min_window_tokens, self.max_window_tokens + 1))
        remove = bool(rng.random() < self.remove_span_prob)

        doc = self._cluster_doc[index]
        members = self._doc_passages[self._doc_ptr[doc] : self._doc_ptr[doc + 1]]
        negatives = np.setdiff1d(members, occ_passage)
        negative_index = int(negatives[rng.integers(len(negatives))]) if len(negatives) else None

        query_source = self.lookup[self._passage_ids[query_passage]]
        query, removed = self._query(query_source, span_start, span_end, length, remove, rng, self._spans[index])
        return {
            "query": query,
            "positive": self.lookup[self._passage_ids[positive_passage]],
            "negative": None if negative_index is None else self.lookup[self._passage_ids[negative_index]],
            "span": self._spans[index],
            "query_passage_id": query_source.id,
            "span_removed": removed,
        }

    @staticmethod
    def _query(
        passage: Passage, start: int, end: int, length: int, remove: bool, rng: np.random.Generator, span: str
    ) -> tuple[str, bool]:
        text = passage.text
        offsets = token_char_spans(text)
        n = len(offsets)
        if end > n or " ".join(text[a:b].lower() for a, b in offsets[start:end]) != span:
            raise ValueError(
                f"passage {passage.id!r}: tokens {start}:{end} are not the span {span!r} "
                "(the span file was mined from another corpus)"
            )
        span_len = end - start
        if remove and n == span_len:
            remove = False  # the passage is the span: nothing else could form a query
        length = min(length, n - span_len if remove else n)
        low = max(0, start - length)
        high = max(low, min(end, n - length - span_len))
        q = int(rng.integers(low, high + 1))

        def cut(a: int, b: int) -> str:
            return text[offsets[a][0] : offsets[b - 1][1]] if b > a else ""

        if not remove:
            return cut(q, min(n, q + length)), False
        left = cut(q, start) if q < start else ""
        taken = max(0, start - q)
        right = cut(end, min(n, end + length - taken))
        return " ".join(part for part in (left, right) if part), True


def open_spider_examples(
    corpus: str | os.PathLike,
    spans: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    seed: int = 0,
    lookup: str = "memory",
    lookup_path: str | os.PathLike | None = None,
    **options: Any,
) -> SpiderExamples:
    """Build :class:`SpiderExamples` from a corpus and its span file(s) (the trainer's entry point).

    :param corpus: the corpus the spans were mined from (DPR ``.tsv`` or BEIR ``.jsonl``).
    :param spans: one or more ``spart mine-spans`` outputs (e.g. all shards).
    :param seed: base seed of the examples.
    :param lookup: ``"memory"`` (only the passages the clusters need) or ``"sqlite"`` (large corpora).
    :param lookup_path: SQLite file for ``lookup="sqlite"`` (default: ``<corpus stem>.passages.sqlite`` next
        to the first span file, since corpora often live in read-only directories).
    :param options: :class:`SpiderExamples` keyword arguments (``remove_span_prob``, windows, ...).
    """
    corpus = Path(corpus)
    if not corpus.exists():
        raise FileNotFoundError(f"{corpus}: no such corpus")
    span_paths = [spans] if isinstance(spans, (str, os.PathLike)) else list(spans)
    if lookup == "memory":
        # A first streaming pass over the span file finds the passages worth keeping in memory.
        needed = {pid for doc in read_spans(span_paths) if doc.clusters for pid in doc.passage_ids}
        passage_lookup: PassageLookup = InMemoryPassageLookup.from_corpus(corpus, needed)
    elif lookup == "sqlite":
        default = Path(span_paths[0]).with_name(corpus.stem + ".passages.sqlite")
        passage_lookup = SqlitePassageLookup.build(corpus, lookup_path or default)
    else:
        raise ValueError(f"lookup must be 'memory' or 'sqlite', got {lookup!r}")
    dataset = SpiderExamples(read_spans(span_paths), passage_lookup, seed=seed, **options)
    if len(dataset) == 0:
        raise ValueError(f"{spans}: no usable recurring-span clusters")
    return dataset
