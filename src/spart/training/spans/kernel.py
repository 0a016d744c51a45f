"""The vectorised span-mining kernel: a batch of filtered documents in, their clusters out
(:func:`mine_documents`, or straight to JSON lines with :func:`mine_documents_to_json`), with exactly the
semantics of :mod:`spart.training.spans.semantics`, checked against the naive
:mod:`spart.training.spans.reference` by the property tests.

How it is fast (each measure was kept because a profile showed it paid):

- **Tokenising by word, cached.** Regex tokens never cross whitespace, so a text is split on whitespace
  (``str.split``, the same whitespace as the regex's ``\\s``) and each *word* is looked up in a per-process
  :class:`_Vocabulary` (one dict lookup per word, in C); only words never seen before run the spec's regex,
  once. The vocabulary also holds every token's lowercased id and span flags, so no per-token Python work
  is left. It is bounded (cleared past ``_MAX_WORDS`` words) and thread-safe.
- **Exact grouping, no hashing.** Round 1 groups the span-eligible tokens by ``(document, lowercased
  token)``; round ``n`` groups the n-gram at ``i`` by ``(group of the (n-1)-gram at i, group of token
  i+n-1)``: small exact integer keys, so there are no collisions to verify. Rounds go apriori-style: an
  n-gram can recur only if both of its (n-1)-grams do, so round ``n`` only looks at surviving positions.
- **Sorting without argsort.** Key and row number are packed into one ``int64`` and sorted with
  ``ndarray.sort`` (SIMD, faster than ``argsort``); rows come out ordered by key, then position, so the
  distinct passages of a group are counted from its first and last row, and the per-round outputs are
  already ordered by span, then position: no final sort, no ``ufunc.at``.
- **Maximality** is a bounded window lookup (an occurrence of length ``n`` lies in at most
  ``(max-n+1)(max-n+2)/2`` longer windows) through a dense ``(start, length) -> span`` ``int32`` table that
  is kept per thread and reset entry by entry (no 10-MB allocation per batch), skipped for spans with an
  occurrence whose (n+1)-token extensions do not recur; (occurrence, span) pairs are deduplicated and counted
  with plain sorts (``np.unique`` hashes, and is slower here).
- **Output** is rendered from arrays: :func:`mine_documents_to_json` writes the JSON lines of
  :meth:`DocumentSpans.to_json` directly (byte-identical to ``json.dumps(..., ensure_ascii=False)``), without
  building the cluster objects first.

Everything the kernel does lives in this module; it imports only numpy, the standard library and the data
types it returns.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Sequence
from itertools import count, islice
from json.encoder import encode_basestring  # type: ignore[attr-defined]  (json.dumps' own, in C)
from typing import Any, NamedTuple

import numpy as np

from spart.training.spans.semantics import DocumentSpans, SpanCluster, SpanMiningConfig

# Per code point, the character kinds the tokenizer needs (bit flags): the regex's \s and [^\W_] are
# str.isspace and str.isalnum, span eligibility needs str.isalpha and str.isdigit. Known for ASCII, filled
# in lazily for other characters (_UNKNOWN until then). A character with none of the flags is a token alone.
_SPACE, _ALNUM, _ALPHA, _DIGIT, _UNKNOWN = 1, 2, 4, 8, 0xFF
_CHAR_KINDS = np.full(0x110000, _UNKNOWN, dtype=np.uint8)


def _kind(char: str) -> int:
    return _SPACE * char.isspace() | _ALNUM * char.isalnum() | _ALPHA * char.isalpha() | _DIGIT * char.isdigit()


_CHAR_KINDS[:128] = [_kind(chr(code)) for code in range(128)]
# ASCII tokens of up to 16 characters are keyed exactly by their bytes, read as two little-endian uint64
# words (bytes past the token masked off; letters and digits are never NUL, so the first word never is 0).
_KEY_BYTES = 16
_WORD_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)
_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
# A vocabulary holding more tokens than this is dropped (between batches) and rebuilt: ~200 bytes a token.
_MAX_TOKENS = 500_000
# Bits of a non-negative int64 that _sort_groups packs key and row number into.
_PACK_BITS = 63
# Lookup tables larger than this many entries are not kept between batches.
_MAX_KEPT_TABLE = 1 << 24


class _Column:
    """A growable numpy array (amortised doubling); ``data[:size]`` holds the values."""

    __slots__ = ("data", "size")

    def __init__(self, dtype: Any) -> None:
        self.data = np.empty(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: list) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            grown = np.empty(max(end, 2 * len(self.data)), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : end] = values
        self.size = end


class _KeyTable:
    """Codes by exact two-word keys (the first word never 0): an open-addressing hash table with linear
    probing at load <= 1/2, looked up and filled with vectorised probes (six times faster than a
    ``searchsorted`` over sorted keys here)."""

    def __init__(self) -> None:
        self._allocate(12)

    def _allocate(self, bits: int) -> None:
        self.first = np.zeros(1 << bits, dtype=np.uint64)  # 0: an empty slot
        self.second = np.zeros(1 << bits, dtype=np.uint64)
        self.codes = np.zeros(1 << bits, dtype=np.int64)
        self.size = 0

    def _slots(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        bits = len(self.first).bit_length() - 1
        return (((first ^ (second * _MIX2)) * _MIX1) >> np.uint64(64 - bits)).astype(np.intp)

    def find(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """:returns: the code of every key, -1 for keys not in the table."""
        mask = len(self.first) - 1
        slot = self._slots(first, second)
        codes = np.full(len(first), -1, dtype=np.int64)
        pending = np.arange(len(first))
        while len(pending):
            at = slot[pending]
            stored = self.first[at]
            hit = (stored == first[pending]) & (self.second[at] == second[pending])
            codes[pending[hit]] = self.codes[at[hit]]
            probe_on = ~hit & (stored != 0)
            pending = pending[probe_on]
            slot[pending] = (at[probe_on] + 1) & mask
        return codes

    def add(self, first: np.ndarray, second: np.ndarray, codes: np.ndarray) -> None:
        """Insert distinct keys that are not in the table yet."""
        if 2 * (self.size + len(first)) > len(self.first):
            used = np.flatnonzero(self.first)
            entries = self.first[used], self.second[used], self.codes[used]
            self._allocate((2 * (self.size + len(first))).bit_length())
            self.add(*entries)
        mask = len(self.first) - 1
        slot = self._slots(first, second)
        pending = np.arange(len(first))
        while len(pending):
            at = slot[pending]
            free = np.flatnonzero(self.first[at] == 0)
            # Keys probing the same free slot: the first of them takes it.
            _, take = np.unique(at[free], return_index=True)
            won = pending[free[take]]
            self.first[slot[won]], self.second[slot[won]], self.codes[slot[won]] = first[won], second[won], codes[won]
            placed = np.zeros(len(pending), dtype=bool)
            placed[free[take]] = True
            pending = pending[~placed]
            slot[pending] = (slot[pending] + 1) & mask  # every slot they probed is taken now
        self.size += len(first)


class _Vocabulary:
    """The span-eligible tokens this process has seen, for one stopword list.

    A token's code maps to its lowercased id (``lowered[id]`` is the lowercased token), its stopword flag
    and whether it may be a 1-token span. Short ASCII tokens are found by their exact key in a
    hash table (:class:`_KeyTable`), the others through a dict of their strings; only tokens never seen before
    cost Python work.
    """

    def __init__(self, stopwords: frozenset[str]) -> None:
        self.stopwords = stopwords
        self.lock = threading.Lock()
        self.next_code = count().__next__
        self.short_codes = _KeyTable()
        self.long_code: defaultdict[str, int] = defaultdict(self.next_code)
        self.lower_code: dict[str, int] = {}
        self.lowered: list[str] = []
        self.token_lower = _Column(np.int64)
        self.token_stop = _Column(np.bool_)
        self.token_single = _Column(np.bool_)  # capitalised or a 4-digit number

    def tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokenise like the spec's regex (:data:`TOKEN_PATTERN`), without building the tokens.

        :returns: per token of the texts (concatenated) its code, or -1 for a token that may not be part of a
            span (not all letters, not all digits), and the number of tokens of each text.
        """
        # Joined by spaces, so that no token crosses two texts; padded for the fixed-width reads below.
        joined = " ".join(texts) + " " * _KEY_BYTES
        chars = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        kinds = _char_kinds(chars)
        word = (kinds & _ALNUM) != 0
        # A token is a run of word characters, or one other non-space character.
        first = kinds == 0
        last = first.copy()
        first[0] |= word[0]
        first[1:] |= word[1:] & ~word[:-1]
        last[:-1] |= word[:-1] & ~word[1:]  # the last character is padding, never a word character
        starts, ends = np.flatnonzero(first), np.flatnonzero(last) + 1
        text_starts = np.cumsum([0] + [len(text) + 1 for text in texts[:-1]])
        lengths = np.diff(np.searchsorted(starts, text_starts), append=len(starts))
        codes = np.full(len(starts), -1, dtype=np.int64)
        if len(starts) == 0:
            return codes, lengths

        # A token may be part of a span when its characters are all letters or all digits: flag (bit 0)
        # every word character that is neither, or is not of the same kind as the previous one of its token,
        # and (bit 1) every non-ASCII character; OR-ing the flags over each token's characters (and the
        # spaces after it, which have none) classifies it.
        letter_or_digit = kinds & (_ALPHA | _DIGIT)
        flags = (word & (letter_or_digit == 0)).view(np.uint8)
        flags[1:] |= word[1:] & word[:-1] & (letter_or_digit[1:] != letter_or_digit[:-1])
        flags |= (chars >= 128).view(np.uint8) << 1
        token_flags = np.bitwise_or.reduceat(flags, starts)
        size = ends - starts
        valid = word[starts] & ((token_flags & 1) == 0)
        short = np.flatnonzero(valid & (token_flags == 0) & (size <= _KEY_BYTES))
        long = np.flatnonzero(valid & ((token_flags != 0) | (size > _KEY_BYTES)))
        with self.lock:
            if len(short):
                codes[short] = self._short_codes(chars, joined, starts[short], size[short])
            if len(long):
                strings = [joined[a:b] for a, b in zip(starts[long].tolist(), ends[long].tolist())]
                known = len(self.long_code)
                codes[long] = np.fromiter(map(self.long_code.__getitem__, strings), dtype=np.int64, count=len(long))
                if len(self.long_code) > known:
                    # Dicts keep insertion order: the newest keys are the tokens this call added.
                    self._add_tokens(list(islice(reversed(self.long_code), len(self.long_code) - known))[::-1])
        return codes, lengths

    def _short_codes(self, chars: np.ndarray, joined: str, starts: np.ndarray, size: np.ndarray) -> np.ndarray:
        """The codes of short ASCII tokens; new tokens (read from ``joined``) get the next codes."""
        words = np.lib.stride_tricks.sliding_window_view(chars.astype(np.uint8), _KEY_BYTES)[starts].view("<u8")
        first = words[:, 0] & _WORD_MASKS[np.minimum(size, 8)]
        second = words[:, 1] & _WORD_MASKS[np.maximum(size - 8, 0)]
        codes = self.short_codes.find(first, second)
        missing = np.flatnonzero(codes < 0)
        if len(missing):
            order = missing[np.lexsort((second[missing], first[missing]))]
            new = np.ones(len(order), dtype=bool)
            new[1:] = (first[order[1:]] != first[order[:-1]]) | (second[order[1:]] != second[order[:-1]])
            distinct = order[new]
            new_tokens = [joined[a : a + n] for a, n in zip(starts[distinct].tolist(), size[distinct].tolist())]
            new_codes = np.array([self.next_code() for _ in new_tokens], dtype=np.int64)
            self._add_tokens(new_tokens)
            self.short_codes.add(first[distinct], second[distinct], new_codes)
            codes[order] = new_codes[np.cumsum(new) - 1]
        return codes

    def _add_tokens(self, new_tokens: list[str]) -> None:
        """Record the lowercased id and the flags of tokens that just got the next codes."""
        lowered = [token.lower() for token in new_tokens]
        lower_ids = []
        for low in lowered:
            low_id = self.lower_code.get(low)
            if low_id is None:
                low_id = self.lower_code[low] = len(self.lowered)
                self.lowered.append(low)
            lower_ids.append(low_id)
        self.token_lower.extend(lower_ids)
        self.token_stop.extend([low in self.stopwords for low in lowered])
        self.token_single.extend([token[0].isupper() or (len(token) == 4 and token.isdigit()) for token in new_tokens])


def _char_kinds(chars: np.ndarray) -> np.ndarray:
    kinds = _CHAR_KINDS[chars]
    unknown = kinds == _UNKNOWN
    if unknown.any():
        for code in np.unique(chars[unknown]).tolist():
            _CHAR_KINDS[code] = _kind(chr(code))
        kinds[unknown] = _CHAR_KINDS[chars[unknown]]
    return kinds


_VOCABULARIES: dict[frozenset[str], _Vocabulary] = {}
_SCRATCH = threading.local()


def _vocabulary(stopwords: frozenset[str]) -> _Vocabulary:
    vocabulary = _VOCABULARIES.get(stopwords)
    if vocabulary is None or vocabulary.token_lower.size > _MAX_TOKENS:
        if len(_VOCABULARIES) >= 4:
            _VOCABULARIES.clear()
        vocabulary = _VOCABULARIES[stopwords] = _Vocabulary(stopwords)
    return vocabulary


def _lookup_table(size: int) -> np.ndarray:
    """A per-thread ``int32`` table of at least ``size`` entries, all ``-1`` (callers reset what they set)."""
    table = getattr(_SCRATCH, "table", None)
    if table is None or len(table) < size:
        # Grown with headroom, so that batches of similar size reuse it.
        table = np.full(max(size + size // 4, 1 << 16), -1, dtype=np.int32)
        if len(table) <= _MAX_KEPT_TABLE:
            _SCRATCH.table = table
    return table


def _sort_groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort rows by ``(key, row)``. :returns: the row order and, in that order, where each group of equal keys
    starts."""
    n = len(keys)
    bits = max(n - 1, 1).bit_length()
    if n and bits < _PACK_BITS and int(keys.max()) < 1 << (_PACK_BITS - bits):
        packed = (keys << bits) | np.arange(n)
        packed.sort()
        order = packed & ((1 << bits) - 1)
        sorted_keys = packed >> bits
    else:  # keys too large to share an int64 with the row number
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
    group_start = np.empty(n, dtype=bool)
    group_start[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=group_start[1:])
    return order, group_start


def _recurring(group_start: np.ndarray, passage: np.ndarray, min_passages: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by group, then position: which belong to a group found in ``min_passages`` distinct
    passages. :returns: that mask per row, and per row its group's number among those groups."""
    first = np.flatnonzero(group_start)
    sizes = np.diff(first, append=len(passage))
    if min_passages <= 1:
        recurs = np.ones(len(first), dtype=bool)
    elif min_passages == 2:
        # Positions ascend within a group, hence passages too: first and last passage differ.
        recurs = passage[first] != passage[first + sizes - 1]
    else:
        new_passage = group_start.copy()
        new_passage[1:] |= passage[1:] != passage[:-1]
        seen = np.cumsum(new_passage)
        recurs = seen[first + sizes - 1] - seen[first] + 1 >= min_passages
    return np.repeat(recurs, sizes), np.repeat(np.cumsum(recurs) - 1, sizes)


class _Batch(NamedTuple):
    """Arrays describing the mined clusters of a batch, clusters in output order."""

    spans: list[str]
    cluster_doc: list[int]
    cluster_end: list[int]  # the cluster's occurrences are occ_*[previous cluster_end : cluster_end]
    occ_passage: list[int]  # index into the batch's passages
    occ_start: list[int]  # token offsets within the passage
    occ_end: list[int]


class EncodedDocuments(NamedTuple):
    """:func:`mine_documents_to_json`'s result: a JSON line per document with clusters, and their counts."""

    lines: list[str]
    clusters: int
    occurrences: int


def mine_documents(
    documents: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    config: SpanMiningConfig,
) -> list[DocumentSpans]:
    """Mine a batch of documents that were already filtered (see :func:`select_passages`).

    :param documents: ``(document_key, [(passage_id, text), ...])`` per document.
    :param config: the mining semantics.
    :returns: one :class:`DocumentSpans` per input document, in order (possibly with no clusters).
    """
    results = [DocumentSpans(key, [pid for pid, _ in passages], []) for key, passages in documents]
    batch = _mine_batch(documents, config)
    if batch is None:
        return results
    passage_ids = [pid for _, passages in documents for pid, _ in passages]
    occurrences = list(zip([passage_ids[p] for p in batch.occ_passage], batch.occ_start, batch.occ_end))
    begin = 0
    for span, doc, end in zip(batch.spans, batch.cluster_doc, batch.cluster_end):
        results[doc].clusters.append(SpanCluster(span, tuple(occurrences[begin:end])))
        begin = end
    return results


def mine_documents_to_json(
    documents: Sequence[tuple[str, Sequence[tuple[str, str]]]],
    config: SpanMiningConfig,
) -> EncodedDocuments:
    """Mine like :func:`mine_documents` and render each document with clusters as
    ``json.dumps(document.to_json(), ensure_ascii=False)`` would, without building the objects.

    :param documents: ``(document_key, [(passage_id, text), ...])`` per document.
    :param config: the mining semantics.
    :returns: the lines (documents without clusters have none) and the number of clusters and occurrences.
    """
    batch = _mine_batch(documents, config)
    if batch is None:
        return EncodedDocuments([], 0, 0)
    pid_json = [_json_string(pid) for _, passages in documents for pid, _ in passages]
    occurrences = [
        f"[{pid_json[p]}, {start}, {end}]" for p, start, end in zip(batch.occ_passage, batch.occ_start, batch.occ_end)
    ]
    clusters_of: dict[int, list[str]] = {}
    begin = 0
    for span, doc, end in zip(batch.spans, batch.cluster_doc, batch.cluster_end):
        cluster = f'{{"span": {encode_basestring(span)}, "occurrences": [{", ".join(occurrences[begin:end])}]}}'
        clusters_of.setdefault(doc, []).append(cluster)
        begin = end
    lines = []
    first_passage = np.cumsum([0] + [len(passages) for _, passages in documents]).tolist()
    for doc, clusters in clusters_of.items():
        ids = ", ".join(pid_json[first_passage[doc] : first_passage[doc + 1]])
        lines.append(
            f'{{"document": {_json_string(documents[doc][0])}, "passage_ids": [{ids}], "clusters": [{", ".join(clusters)}]}}'
        )
    return EncodedDocuments(lines, len(batch.spans), len(occurrences))


def _json_string(value: Any) -> str:
    return encode_basestring(value) if type(value) is str else json.dumps(value, ensure_ascii=False)


def _mine_batch(documents: Sequence[tuple[str, Sequence[tuple[str, str]]]], config: SpanMiningConfig) -> _Batch | None:
    """The clusters of a batch as arrays, or ``None`` when it has none."""
    texts = [text if isinstance(text, str) else "" for _, passages in documents for _, text in passages]
    if not texts:
        return None
    vocabulary = _vocabulary(config.stopwords)
    codes, lengths = vocabulary.tokenize(texts)
    n_tokens = len(codes)
    min_len, max_len, min_passages = config.min_span_length, config.max_span_length, config.min_span_passages
    if n_tokens < min_len:
        return None

    passage_doc = np.repeat(np.arange(len(documents)), [len(passages) for _, passages in documents])
    valid = codes >= 0
    lower = np.where(valid, vocabulary.token_lower.data[codes], -1)
    stop = vocabulary.token_stop.data[codes] & valid
    positions = np.arange(n_tokens)
    passage_start = np.cumsum(lengths) - lengths
    token_passage = np.repeat(np.arange(len(texts)), lengths)

    # run[i]: number of consecutive span-eligible tokens starting at i, without leaving i's passage.
    breaks = np.where(valid, n_tokens, positions)
    next_break = np.minimum.accumulate(breaks[::-1])[::-1]
    run = np.minimum(next_break, (passage_start + lengths)[token_passage]) - positions

    # alive_len[i]: the n-grams at i recur (in >= min_passages passages) for every n <= alive_len[i].
    alive_len = np.zeros(n_tokens + 1, dtype=np.int8)
    token_group = np.empty(n_tokens, dtype=np.int64)  # round 1's group of the token at i
    gram_group = token_group  # the previous round's group of the n-gram at i
    n_token_groups = 0
    out_starts, out_groups, out_lengths = [], [], []
    alive = np.flatnonzero(valid)
    for n in range(1, max_len + 1):
        if n == 1:
            keys = passage_doc[token_passage[alive]] * len(vocabulary.lowered) + lower[alive]
        else:
            alive = alive[(alive_len[alive + 1] >= n - 1) & (run[alive] >= n)]
            if len(alive) == 0:
                break
            keys = gram_group[alive] * n_token_groups + token_group[alive + (n - 1)]
        order, group_start = _sort_groups(keys)
        recurs, group = _recurring(group_start, token_passage[alive[order]], min_passages)
        kept, group = alive[order[recurs]], group[recurs]
        if len(kept) == 0:
            break
        alive_len[kept] = n
        if n == 1:
            token_group[kept] = group
            n_token_groups = int(group[-1]) + 1 if len(group) else 0
        else:
            if gram_group is token_group:
                gram_group = np.empty(n_tokens, dtype=np.int64)
            gram_group[kept] = group
        in_order = np.empty(len(alive), dtype=bool)
        in_order[order] = recurs
        alive = alive[in_order]  # positions ascending again
        if n < min_len:
            continue
        if n == 1:
            # Capitalisation is a property of the surface token, not of the lowercased span, so 1-token
            # spans are grouped again over their eligible occurrences only.
            eligible = vocabulary.token_single.data[codes[kept]] & ~stop[kept]
            kept, group = kept[eligible], group[eligible]
            starts_group = np.empty(len(group), dtype=bool)
            starts_group[:1] = True
            np.not_equal(group[1:], group[:-1], out=starts_group[1:])
            recurs, _ = _recurring(starts_group, token_passage[kept], min_passages)
            kept, group = kept[recurs], group[recurs]
        else:
            # Stopword rules depend only on the span's tokens, so all occurrences of a group pass or fail.
            eligible = ~stop[kept] & ~stop[kept + (n - 1)]
            kept, group = kept[eligible], group[eligible]
        out_starts.append(kept)
        out_groups.append(group)
        out_lengths.append(np.full(len(kept), n, dtype=np.int64))
    if not out_starts or not sum(len(s) for s in out_starts):
        return None
    # Occurrences ordered by length, group, position: one final group per (length, group).
    starts = np.concatenate(out_starts)
    span_lengths = np.concatenate(out_lengths)
    round_group = np.concatenate(out_groups)
    new_group = np.empty(len(starts), dtype=bool)
    new_group[:1] = True
    new_group[1:] = (round_group[1:] != round_group[:-1]) | (span_lengths[1:] != span_lengths[:-1])
    occ_group = np.cumsum(new_group) - 1
    group_first = np.flatnonzero(new_group)
    group_size = np.diff(group_first, append=len(starts))
    n_groups = len(group_first)

    maximal = np.ones(n_groups, dtype=bool)
    if config.maximal_only and max_len > min_len:
        # A longer recurring span around an occurrence contains one of its two (n+1)-token extensions,
        # which then recur too; a group with an occurrence that has neither is maximal without lookups.
        extendable = alive_len[starts] > span_lengths
        extendable |= (alive_len[np.maximum(starts - 1, 0)] > span_lengths) & (starts > 0)
        suspect = np.logical_and.reduceat(extendable, group_first)
        if suspect.any():
            maximal = ~_covered_groups(starts, span_lengths, occ_group, group_size, suspect[occ_group], max_len, min_len)

    # Clusters ordered by (first occurrence, length), hence by document too.
    kept_groups = np.flatnonzero(maximal)
    first = group_first[kept_groups]
    kept_groups = kept_groups[np.argsort(starts[first] * (max_len + 1) + span_lengths[first])]
    first, size = group_first[kept_groups], group_size[kept_groups]
    cluster_end = np.cumsum(size)
    occ = np.repeat(first - (cluster_end - size), size) + np.arange(int(cluster_end[-1]))
    occ_start, occ_length = starts[occ], span_lengths[occ]
    occ_passage = token_passage[occ_start]
    occ_offset = occ_start - passage_start[occ_passage]

    # The span text, from the lowercased tokens of each cluster's first occurrence.
    rep_start, rep_length = starts[first], span_lengths[first]
    rep_end = np.cumsum(rep_length)
    rep_tokens = lower[np.repeat(rep_start - (rep_end - rep_length), rep_length) + np.arange(int(rep_end[-1]))]
    words = [vocabulary.lowered[i] for i in rep_tokens.tolist()]
    bounds = rep_end.tolist()
    spans = [" ".join(words[b:e]) for b, e in zip([0, *bounds[:-1]], bounds)]
    return _Batch(
        spans=spans,
        cluster_doc=passage_doc[occ_passage[cluster_end - size]].tolist(),
        cluster_end=cluster_end.tolist(),
        occ_passage=occ_passage.tolist(),
        occ_start=occ_offset.tolist(),
        occ_end=(occ_offset + occ_length).tolist(),
    )


def _covered_groups(
    starts: np.ndarray,
    lengths: np.ndarray,
    occ_group: np.ndarray,
    group_size: np.ndarray,
    check: np.ndarray,
    max_len: int,
    min_len: int,
) -> np.ndarray:
    """Which recurring groups have every occurrence inside occurrences of one longer recurring group.

    Every occurrence ``[s, s+n)`` flagged in ``check`` is looked up in the windows ``[s-dl, s+n+delta-dl)``
    that contain it (``1 <= delta <= max-n``, ``0 <= dl <= delta``) through a dense ``(start, length) ->
    group`` table; a group is covered by ``L`` when the number of its distinct occurrences that ``L``
    contains equals its size. A group with an unchecked occurrence is never reported as covered.
    """
    n_groups = len(group_size)
    covered = np.zeros(n_groups, dtype=bool)
    stride = max_len + 1
    slots = starts * stride + lengths
    table = _lookup_table(int(starts.max() + 1) * stride)
    table[slots] = occ_group
    try:
        checked = np.flatnonzero(check)
        checked_starts, checked_lengths = starts[checked], lengths[checked]
        pairs = []
        for delta in range(1, max_len - min_len + 1):
            fits = np.flatnonzero(checked_lengths + delta <= max_len)
            if len(fits) == 0:
                break
            fit_starts, longer = checked_starts[fits], checked_lengths[fits] + delta
            for left in range(delta + 1):
                begin = fit_starts - left
                # A negative begin indexes from the table's end: masked out below.
                cover = table[begin * stride + longer]
                hit = np.flatnonzero((cover >= 0) & (begin >= 0))
                pairs.append(fits[hit] * n_groups + cover[hit])
    finally:
        table[slots] = -1
    if not pairs:
        return covered
    pairs = np.concatenate(pairs)
    if len(pairs) == 0:
        return covered
    # One occurrence may sit in two windows of the same longer group: count each occurrence once.
    pairs.sort()
    pairs = pairs[np.concatenate(([True], pairs[1:] != pairs[:-1]))]
    occ, cover = pairs // n_groups, pairs % n_groups
    group_cover = occ_group[checked[occ]] * n_groups + cover
    group_cover.sort()
    first = np.flatnonzero(np.concatenate(([True], group_cover[1:] != group_cover[:-1])))
    counts = np.diff(first, append=len(group_cover))
    group = group_cover[first] // n_groups
    covered[group[counts == group_size[group]]] = True
    return covered
