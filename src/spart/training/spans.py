"""Recurring-span mining for SPIDER pre-training (Ram et al. 2022, "Learning to Retrieve Passages without
Supervision", section 3 and ``preprocess_corpus.py`` of oriram/spider).

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

Speed: no pair loops. A batch of documents (about ``batch_passages`` passages) is tokenised with one regex
call; every n-gram gets a 64-bit hash mixing its tokens, its document and its length, and equal hashes
are grouped with one numpy sort per length. Lengths are processed apriori-style: an n-gram can recur only
if both of its (n-1)-grams recur, so round n hashes and sorts only the surviving positions. Maximality is a
bounded window lookup (an occurrence of length ``n`` lies in at most ``(max-n+1)(max-n+2)/2`` longer
windows), skipped for groups with an occurrence whose (n+1)-token extensions do not recur. Hash groups
that reach the output are verified token by token, so a hash collision can never produce a wrong cluster
(the batch is re-hashed with another seed instead). Batches are mined in a process pool with at most
``2 * workers`` batches in flight, so memory is bounded by the batch (or the largest document), never the
corpus.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from spart.atomic import write_text_atomic
from spart.training.stopwords import NLTK_ENGLISH_STOPWORDS

TOKEN_PATTERN = re.compile(r"[^\W_]+|\S")

# Joins the passages of a batch so one regex call tokenises all of them; it is a non-word, non-space
# character, so it always forms a token of its own and marks the passage boundary.
_SENTINEL = "\x00"

_U64 = np.uint64
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_ROLL = _U64(0xD6E8FEB86659FD93)


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
            "clusters": [
                {"span": c.span, "occurrences": [list(o) for o in c.occurrences]} for c in self.clusters
            ],
        }

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> "DocumentSpans":
        return cls(
            document=record["document"],
            passage_ids=list(record["passage_ids"]),
            clusters=[
                SpanCluster(span=c["span"], occurrences=tuple((o[0], int(o[1]), int(o[2])) for o in c["occurrences"]))
                for c in record["clusters"]
            ],
        )


# ----------------------------------------------------------------------------------------------------
# Documents
# ----------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------
# The vectorised kernel
# ----------------------------------------------------------------------------------------------------


class _HashCollision(RuntimeError):
    pass


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 that spreads every input bit over the output."""
    x = x ^ (x >> _U64(30))
    x = x * _MIX1
    x ^= x >> _U64(27)
    x *= _MIX2
    x ^= x >> _U64(31)
    return x


def _tokenize_batch(texts: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Tokenise many passages with one regex call.

    :returns: the unique tokens (in first-seen order), the code of every token (index into the unique
        list) and the number of tokens of every passage.
    """
    joined = _SENTINEL.join(texts)
    if joined.count(_SENTINEL) == len(texts) - 1:
        tokens = TOKEN_PATTERN.findall(joined)
        codes_of = dict.fromkeys(tokens)
        for code, tok in enumerate(codes_of):
            codes_of[tok] = code
        codes = np.fromiter(map(codes_of.__getitem__, tokens), dtype=np.int64, count=len(tokens))
        sentinel_code = codes_of.get(_SENTINEL, -1)
        is_sentinel = codes == sentinel_code
        boundaries = np.flatnonzero(is_sentinel)
        lengths = np.diff(np.concatenate(([-1], boundaries, [len(tokens)]))) - 1
        codes = codes[~is_sentinel]
        return list(codes_of), codes, lengths
    # A text contains the sentinel itself: tokenise passage by passage (rare, slower, same result).
    per_passage = [TOKEN_PATTERN.findall(text) for text in texts]
    tokens = [tok for toks in per_passage for tok in toks]
    codes_of = dict.fromkeys(tokens)
    for code, tok in enumerate(codes_of):
        codes_of[tok] = code
    codes = np.fromiter(map(codes_of.__getitem__, tokens), dtype=np.int64, count=len(tokens))
    lengths = np.array([len(toks) for toks in per_passage], dtype=np.int64)
    return list(codes_of), codes, lengths


def mine_documents(
    documents: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    config: SpanMiningConfig,
) -> list[DocumentSpans]:
    """Mine a batch of documents that were already filtered (see :func:`select_passages`).

    :param documents: ``(document_key, [(passage_id, text), ...])`` per document.
    :param config: the mining semantics.
    :returns: one :class:`DocumentSpans` per input document, in order (possibly with no clusters).
    """
    for seed in range(8):
        try:
            return _mine_batch(documents, config, seed)
        except _HashCollision:
            continue
    raise RuntimeError("span mining: hash collisions persisted over 8 seeds (this should never happen)")


def _group_ids(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Group equal keys (quicksort, the fastest numpy sort). :returns: (order, group id per key, #groups)."""
    order = np.argsort(keys)
    sorted_keys = keys[order]
    new_group = np.empty(len(keys), dtype=bool)
    new_group[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=new_group[1:])
    group_sorted = np.cumsum(new_group) - 1
    group = np.empty(len(keys), dtype=np.int64)
    group[order] = group_sorted
    return order, group, int(group_sorted[-1]) + 1 if len(keys) else 0


def _recurring_groups(
    group: np.ndarray, n_groups: int, passage: np.ndarray, min_passages: int
) -> np.ndarray:
    """Per group: does it occur in at least ``min_passages`` distinct passages?"""
    if min_passages <= 1:
        return np.ones(n_groups, dtype=bool)
    if min_passages == 2:
        # Two distinct passages <=> the smallest and largest passage index differ (no second sort needed).
        low = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
        high = np.full(n_groups, -1, dtype=np.int64)
        np.minimum.at(low, group, passage)
        np.maximum.at(high, group, passage)
        return high > low
    if n_groups == 0:
        return np.zeros(0, dtype=bool)
    stride = int(passage.max()) + 1
    pairs = np.unique(group * stride + passage)
    distinct = np.bincount(pairs // stride, minlength=n_groups)
    return distinct >= min_passages


def _mine_batch(
    documents: Sequence[tuple[str, Sequence[tuple[str, str]]]], config: SpanMiningConfig, seed: int
) -> list[DocumentSpans]:
    results = [DocumentSpans(key, [pid for pid, _ in passages], []) for key, passages in documents]
    texts = [text if isinstance(text, str) else "" for _, passages in documents for _, text in passages]
    if not texts:
        return results
    passage_ids = [pid for _, passages in documents for pid, _ in passages]
    passage_doc = np.repeat(np.arange(len(documents)), [len(p) for _, p in documents])

    uniq, codes, lengths = _tokenize_batch(texts)
    n_tokens = len(codes)
    min_len, max_len = config.min_span_length, config.max_span_length
    if n_tokens < min_len:
        return results

    # Per distinct surface token: lowercased id, span eligibility, stopword flag.
    lowered = [tok.lower() for tok in uniq]
    low_ids_of: dict[str, int] = {}
    low_id = np.array([low_ids_of.setdefault(low, len(low_ids_of)) for low in lowered], dtype=np.int64)
    stopwords = config.stopwords
    valid_u = np.array([tok.isalpha() or tok.isdigit() for tok in uniq], dtype=bool)
    stop_u = np.array([low in stopwords for low in lowered], dtype=bool)

    ids = low_id[codes]
    valid = valid_u[codes]
    stop = stop_u[codes]
    positions = np.arange(n_tokens)
    passage_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    token_passage = np.repeat(np.arange(len(texts)), lengths)
    token_doc = passage_doc[token_passage]

    # run[i]: number of consecutive span-eligible tokens starting at i, without leaving i's passage.
    breaks = np.where(valid, n_tokens, positions)
    next_break = np.minimum.accumulate(breaks[::-1])[::-1]
    run = np.minimum(next_break, (passage_start + lengths)[token_passage]) - positions

    # Hash of the n-gram starting at each position; it mixes the tokens, the document (so one sort groups
    # per document) and the length. For n = 1 it is a bijection of (document, token), hence exact.
    base = _mix(((token_doc.astype(_U64) << _U64(32)) | ids.astype(_U64)) + _U64(seed) * _GOLDEN)
    rolling = base.copy()

    # Apriori over lengths: an n-gram can occur in k passages only if both of its (n-1)-grams do, so
    # round n only hashes and sorts the positions whose two (n-1)-grams survived round n-1.
    alive = np.flatnonzero(valid)
    out_keys, out_starts, out_lengths = [], [], []
    # alive_at[n, i]: the n-gram at i recurs as a raw n-gram (used to skip hopeless maximality checks).
    alive_at = np.zeros((max_len + 2, n_tokens + 1), dtype=bool)
    for n in range(1, max_len + 1):
        if n > 1:
            is_alive = np.zeros(n_tokens + 1, dtype=bool)
            is_alive[alive] = True
            alive = alive[is_alive[alive + 1] & (run[alive] >= n)]
            if len(alive) == 0:
                break
            rolling[alive] = _mix(rolling[alive] * _ROLL + base[alive + (n - 1)] + _U64(n))
        keys = rolling[alive]
        _, group, n_groups = _group_ids(keys)
        recurring = _recurring_groups(group, n_groups, token_passage[alive], config.min_span_passages)
        alive = alive[recurring[group]]
        if len(alive) == 0:
            break
        alive_at[n, alive] = True
        if n < min_len:
            continue
        if n == 1:
            # Capitalisation is a property of the surface token, not of the lowercased span, so 1-token
            # spans are grouped again over their eligible occurrences only.
            single_u = np.array([tok[:1].isupper() or (len(tok) == 4 and tok.isdigit()) for tok in uniq])
            starts = alive[single_u[codes[alive]] & ~stop[alive]]
            if len(starts):
                _, group, n_groups = _group_ids(rolling[starts])
                recurring = _recurring_groups(group, n_groups, token_passage[starts], config.min_span_passages)
                starts = starts[recurring[group]]
        else:
            # Stopword rules depend only on the span's tokens, so all occurrences of a group pass or fail.
            starts = alive[~stop[alive] & ~stop[alive + (n - 1)]]
        out_keys.append(rolling[starts])
        out_starts.append(starts)
        out_lengths.append(np.full(len(starts), n, dtype=np.int64))
    if not out_keys or not sum(len(k) for k in out_keys):
        return results
    keys = np.concatenate(out_keys)
    starts = np.concatenate(out_starts)
    span_lengths = np.concatenate(out_lengths)

    # One group per span; occurrences sorted by group, then position (hence passage order).
    _, group, n_groups = _group_ids(keys)
    order = np.lexsort((starts, group))
    occ_group, starts, span_lengths = group[order], starts[order], span_lengths[order]
    group_first = np.flatnonzero(np.concatenate(([True], occ_group[1:] != occ_group[:-1])))
    group_size = np.diff(np.append(group_first, len(occ_group)))

    # Verify that every occurrence really equals its group's first occurrence (hashes can collide).
    rep = group_first[occ_group]
    pad = np.concatenate((ids, np.full(max_len, -1, dtype=np.int64)))
    window = starts[:, None] + np.arange(max_len)[None, :]
    tokens_window = np.where(np.arange(max_len)[None, :] < span_lengths[:, None], pad[window], -2)
    same = (tokens_window == tokens_window[rep]).all(axis=1)
    same &= span_lengths == span_lengths[rep]
    same &= token_doc[starts] == token_doc[starts[rep]]
    if not same.all():
        raise _HashCollision

    maximal = np.ones(n_groups, dtype=bool)
    if config.maximal_only and max_len > min_len:
        # A longer recurring span around an occurrence contains one of its two (n+1)-token extensions,
        # which then recur too; a group with an occurrence that has neither is maximal without lookups.
        extendable = alive_at[span_lengths + 1, starts] | (
            alive_at[span_lengths + 1, np.maximum(starts - 1, 0)] & (starts > 0)
        )
        suspect = np.bincount(occ_group, weights=~extendable, minlength=n_groups) == 0
        maximal = ~_covered_groups(
            starts, span_lengths, occ_group, group_size, n_tokens, max_len, min_len, suspect[occ_group]
        )

    # Assemble clusters, ordered by (document, first occurrence, length).
    kept_groups = np.flatnonzero(maximal)
    first_starts = starts[group_first[kept_groups]]
    first_lengths = span_lengths[group_first[kept_groups]]
    kept_groups = kept_groups[np.lexsort((first_lengths, first_starts))]
    occ_passage = token_passage[starts]
    occ_offset = starts - passage_start[occ_passage]
    # Python lists (not numpy scalars) for the per-cluster loop; occurrence tuples are zipped in C.
    occ_pid_l = [passage_ids[p] for p in occ_passage.tolist()]
    occ_offset_l = occ_offset.tolist()
    occ_end_l = (occ_offset + span_lengths).tolist()
    occ_doc_l = passage_doc[occ_passage].tolist()
    lengths_l = span_lengths.tolist()
    group_first_l = group_first.tolist()
    group_size_l = group_size.tolist()
    starts_l = starts.tolist()
    for g in kept_groups.tolist():
        first = group_first_l[g]
        last = first + group_size_l[g]
        begin = starts_l[first]
        span = " ".join([lowered[c] for c in codes[begin : begin + lengths_l[first]].tolist()])
        occurrences = tuple(zip(occ_pid_l[first:last], occ_offset_l[first:last], occ_end_l[first:last]))
        results[occ_doc_l[first]].clusters.append(SpanCluster(span, occurrences))
    return results


def _covered_groups(
    starts: np.ndarray,
    lengths: np.ndarray,
    occ_group: np.ndarray,
    group_size: np.ndarray,
    n_tokens: int,
    max_len: int,
    min_len: int,
    check: np.ndarray | None = None,
) -> np.ndarray:
    """Which recurring groups have every occurrence inside occurrences of one longer recurring group.

    Every occurrence ``[s, s+n)`` is looked up in the windows ``[s-dl, s+n+delta-dl)`` that contain it
    (``1 <= delta <= max-n``, ``0 <= dl <= delta``) through a dense ``(length, start) -> group`` table;
    a group is covered by ``L`` when the number of its distinct occurrences that ``L`` contains equals
    its size. Only occurrences flagged in ``check`` (default: all) are looked up; a group with an
    unchecked occurrence is never reported as covered.
    """
    n_groups = len(group_size)
    table = np.full((max_len + 1) * n_tokens, -1, dtype=np.int64)
    table[lengths * n_tokens + starts] = occ_group
    checked = np.ones(len(starts), dtype=bool) if check is None else check
    pair_occ, pair_cover = [], []
    for delta in range(1, max_len - min_len + 1):
        longer = lengths + delta
        fits = checked & (longer <= max_len)
        if not fits.any():
            break
        for left in range(delta + 1):
            begin = starts - left
            ok = fits & (begin >= 0) & (begin + longer <= n_tokens)
            idx = np.flatnonzero(ok)
            if len(idx) == 0:
                continue
            cover = table[longer[idx] * n_tokens + begin[idx]]
            hit = cover >= 0
            pair_occ.append(idx[hit])
            pair_cover.append(cover[hit])
    covered = np.zeros(n_groups, dtype=bool)
    if not pair_occ:
        return covered
    occ = np.concatenate(pair_occ)
    cover = np.concatenate(pair_cover)
    if len(occ) == 0:
        return covered
    # One occurrence may sit in two windows of the same longer group: count each occurrence once.
    pairs = np.unique(occ * n_groups + cover)
    occ, cover = pairs // n_groups, pairs % n_groups
    group_cover, counts = np.unique(occ_group[occ] * n_groups + cover, return_counts=True)
    group = group_cover // n_groups
    covered[group[counts == group_size[group]]] = True
    return covered


# ----------------------------------------------------------------------------------------------------
# Streaming over a corpus
# ----------------------------------------------------------------------------------------------------


def _mine_payload(payload: tuple[list[tuple[str, list[tuple[str, str]]]], SpanMiningConfig]) -> list[DocumentSpans]:
    documents, config = payload
    return mine_documents(documents, config)


def _mine_payload_encoded(
    payload: tuple[list[tuple[str, list[tuple[str, str]]]], SpanMiningConfig],
) -> tuple[bytes, dict[str, int]]:
    """Mine a batch and serialise it in the worker: one gzip member of JSON lines, plus its counts."""
    counts = MiningStats()
    lines = []
    for document in _mine_payload(payload):
        counts.add(document)
        if document.clusters:
            lines.append(json.dumps(document.to_json(), ensure_ascii=False))
    data = gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=1) if lines else b""
    return data, vars(counts)


def _batches(
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


def _run_batches(
    batches: Iterable[tuple[list, int, int]],
    config: SpanMiningConfig,
    workers: int,
    function: Callable[[Any], Any] = _mine_payload,
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
    for records, _, _ in _run_batches(_batches(iter_documents(passages, config), config, batch_passages), config, workers):
        yield from records


@dataclass
class MiningStats:
    """Counts of one mining run (a shard), written next to the output as ``<output>.stats.json``."""

    passages: int = 0
    documents: int = 0
    eligible_documents: int = 0
    eligible_passages: int = 0
    documents_with_clusters: int = 0
    clusters: int = 0
    occurrences: int = 0
    seconds: float = 0.0
    resumed_from_documents: int = 0

    def merge(self, counts: dict[str, int]) -> None:
        for name in ("eligible_documents", "eligible_passages", "documents_with_clusters", "clusters", "occurrences"):
            setattr(self, name, getattr(self, name) + counts[name])

    def add(self, document: DocumentSpans) -> None:
        self.eligible_documents += 1
        self.eligible_passages += len(document.passage_ids)
        if document.clusters:
            self.documents_with_clusters += 1
            self.clusters += len(document.clusters)
            self.occurrences += sum(len(c.occurrences) for c in document.clusters)


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/n"`` (0-based shard ``i`` of ``n``)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"shard must look like 'i/n' (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard index must satisfy 0 <= i < n, got {text!r}")
    return index, count


def mine_spans_to_file(
    corpus: str | os.PathLike,
    output: str | os.PathLike,
    config: SpanMiningConfig | None = None,
    *,
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    batch_passages: int = 2048,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    checkpoint_seconds: float = 2.0,
    read_passages: Callable[[Any], Iterable[Any]] | None = None,
) -> MiningStats:
    """Mine a corpus file into ``output`` (JSONL.gz, one line per document that has clusters).

    Shard ``i/n`` mines the documents whose ordinal (counting every document of the corpus, in order) is
    ``i`` modulo ``n``. The shard is written to ``<output>.partial`` as a sequence of complete gzip
    members, one per batch, and ``<output>.progress.json`` records how many documents and bytes are done;
    an interrupted run resumes from there (bytes past the record are cut off), and the finished file is
    renamed to ``output`` at the end. An existing finished ``output`` is left alone (its recorded stats are
    returned) unless ``overwrite``.

    :param corpus: a DPR passages ``.tsv`` or a BEIR ``corpus.jsonl`` (read by :func:`spart.data.read_passages`).
    :param output: the ``.jsonl.gz`` file to produce.
    :param config: the mining semantics.
    :param shard: ``(i, n)``.
    :param workers: mining processes.
    :param batch_passages: passages per batch (one gzip member, one progress record).
    :param resume: continue a partial run (otherwise it restarts from scratch).
    :param overwrite: mine again even if ``output`` already exists (it is replaced only at the end).
    :param progress: show a tqdm bar (passages).
    :param checkpoint_seconds: least time between two progress records.
    :param read_passages: passage reader override (default :func:`spart.data.read_passages`).
    :returns: the run's :class:`MiningStats`.
    """
    import time

    from tqdm import tqdm

    config = config or SpanMiningConfig()
    shard_index, shard_count = shard
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise ValueError(f"shard must satisfy 0 <= i < n, got {shard_index}/{shard_count}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if batch_passages < 1:
        raise ValueError(f"batch_passages must be >= 1, got {batch_passages}")
    corpus = Path(corpus)
    output = Path(output)
    if not corpus.exists():
        raise FileNotFoundError(f"{corpus}: no such corpus file")
    if not output.name.endswith(".jsonl.gz"):
        raise ValueError(f"{output}: output must end with .jsonl.gz")
    output.parent.mkdir(parents=True, exist_ok=True)
    stats_path = output.with_name(output.name + ".stats.json")
    if output.exists() and not overwrite:
        if stats_path.exists():
            return MiningStats(**json.loads(stats_path.read_text())["stats"])
        return MiningStats()
    partial = output.with_name(output.name + ".partial")
    progress_path = output.with_name(output.name + ".progress.json")
    identity = {
        "corpus": str(corpus.resolve()),
        "shard": [shard_index, shard_count],
        "config": config.to_dict(),
    }

    stats = MiningStats()
    done_docs = done_bytes = 0
    if resume and progress_path.exists() and partial.exists():
        try:
            record = json.loads(progress_path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{progress_path}: corrupt progress record ({error}); delete it to restart") from None
        if not isinstance(record, dict) or record.get("identity") != identity:
            raise ValueError(
                f"{progress_path}: records a run with other settings ({record.get('identity')}); "
                "delete it and the .partial file, or use the same settings"
            )
        done_docs, done_bytes = int(record["documents"]), int(record["bytes"])
        stats = MiningStats(**record["stats"])
        stats.resumed_from_documents = done_docs
    if done_bytes == 0 and partial.exists():
        partial.unlink()
    if read_passages is None:
        from spart.data import read_passages as read_passages_default

        read_passages = read_passages_default

    def shard_documents(skip: int) -> Iterator[tuple[str, list[Any]]]:
        skipped = 0
        for ordinal, (key, passages) in enumerate(iter_documents(read_passages(corpus), config)):
            if ordinal % shard_count != shard_index:
                continue
            if skipped < skip:
                skipped += 1
                continue
            yield key, passages

    started = time.perf_counter()
    elapsed_before = stats.seconds
    last_record = 0.0
    with partial.open("r+b" if partial.exists() else "wb") as handle:
        handle.truncate(done_bytes)
        handle.seek(done_bytes)
        bar = tqdm(
            total=None, unit="psg", desc=f"mine-spans {output.name}", disable=not progress, initial=stats.passages
        )
        batches = _batches(shard_documents(done_docs), config, batch_passages)
        for (data, counts), n_docs, n_passages in _run_batches(batches, config, workers, _mine_payload_encoded):
            handle.write(data)
            stats.merge(counts)
            stats.documents += n_docs
            stats.passages += n_passages
            done_docs += n_docs
            bar.update(n_passages)
            now = time.perf_counter()
            if now - last_record >= checkpoint_seconds:
                handle.flush()
                os.fsync(handle.fileno())
                stats.seconds = elapsed_before + now - started
                write_text_atomic(
                    progress_path,
                    json.dumps(
                        {"identity": identity, "documents": done_docs, "bytes": handle.tell(), "stats": vars(stats)},
                        indent=1,
                    ),
                )
                last_record = now
        bar.close()
        handle.flush()
        os.fsync(handle.fileno())
    if partial.stat().st_size == 0:
        # No document had clusters: still produce a valid (empty) gzip file.
        partial.write_bytes(gzip.compress(b""))
    stats.seconds = elapsed_before + time.perf_counter() - started
    write_text_atomic(stats_path, json.dumps({"identity": identity, "stats": vars(stats)}, indent=1))
    os.replace(partial, output)
    progress_path.unlink(missing_ok=True)
    return stats


def read_spans(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Iterator[DocumentSpans]:
    """Stream :class:`DocumentSpans` from one or more files written by :func:`mine_spans_to_file`.

    :raises FileNotFoundError: for a missing file.
    :raises ValueError: for a line that is not a document record (names file:line).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such span file")
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield DocumentSpans.from_json(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError, IndexError) as error:
                    raise ValueError(f"{path}:{line_no}: not a span-mining record ({error})") from None
