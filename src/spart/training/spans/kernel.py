"""The vectorised span-mining kernel: a batch of filtered documents in, their clusters out
(:func:`mine_documents`), with exactly the semantics of :mod:`spart.training.spans.semantics`, checked
against the naive :mod:`spart.training.spans.reference` by the property tests.

Speed: no pair loops. A batch of documents (about ``batch_passages`` passages) is tokenised with one regex
call; every n-gram gets a 64-bit hash mixing its tokens, its document and its length, and equal hashes
are grouped with one numpy sort per length. Lengths are processed apriori-style: an n-gram can recur only
if both of its (n-1)-grams recur, so round n hashes and sorts only the surviving positions. Maximality is a
bounded window lookup (an occurrence of length ``n`` lies in at most ``(max-n+1)(max-n+2)/2`` longer
windows), skipped for groups with an occurrence whose (n+1)-token extensions do not recur. Hash groups
that reach the output are verified token by token, so a hash collision can never produce a wrong cluster
(the batch is re-hashed with another seed instead).

Everything the kernel does lives in this module; it imports only numpy and the data types it returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from spart.training.spans.semantics import TOKEN_PATTERN, DocumentSpans, SpanCluster, SpanMiningConfig

# Joins the passages of a batch so one regex call tokenises all of them; it is a non-word, non-space
# character, so it always forms a token of its own and marks the passage boundary.
_SENTINEL = "\x00"

_U64 = np.uint64
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_ROLL = _U64(0xD6E8FEB86659FD93)


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
