"""A deliberately naive recurring-span miner: the executable specification of :mod:`spart.training.spans`
(:mod:`~spart.training.spans.semantics`).

It enumerates every candidate span of every passage with nested loops, groups them by their lowercased
token tuple, and drops non-maximal spans by comparing every pair of recurring spans occurrence by
occurrence (quadratic in the number of recurring spans). It is used by the property tests (the fast miner
must produce exactly the same clusters) and by ``benchmarks/bench_span_mining.py`` as the baseline.
Never use it on a real corpus.
"""

from __future__ import annotations

from collections.abc import Sequence

from spart.training.spans.semantics import SpanCluster, SpanMiningConfig, tokenize


def _is_candidate(tokens: Sequence[str], lowered: Sequence[str], config: SpanMiningConfig) -> bool:
    if not all(tok.isalpha() or tok.isdigit() for tok in tokens):
        return False
    stop = config.stopwords
    if all(low in stop for low in lowered):
        return False
    if lowered[0] in stop or lowered[-1] in stop:
        return False
    if len(tokens) == 1:
        tok = tokens[0]
        return tok[0].isupper() or (len(tok) == 4 and tok.isdigit())
    return True


def naive_mine_document(passages: Sequence[tuple[str, str]], config: SpanMiningConfig) -> list[SpanCluster]:
    """Mine one document (already filtered: no minimum-size check, no last-passage drop here).

    :param passages: ``(passage_id, text)`` pairs of one document, in order.
    :param config: the mining semantics.
    :returns: the clusters, sorted like :func:`spart.training.spans.kernel.mine_documents` sorts them.
    """
    occurrences: dict[tuple[str, ...], list[tuple[int, int, int]]] = {}
    for p_index, (_, text) in enumerate(passages):
        tokens = tokenize(text)
        lowered = [tok.lower() for tok in tokens]
        for start in range(len(tokens)):
            for length in range(config.min_span_length, config.max_span_length + 1):
                end = start + length
                if end > len(tokens):
                    break
                if _is_candidate(tokens[start:end], lowered[start:end], config):
                    occurrences.setdefault(tuple(lowered[start:end]), []).append((p_index, start, end))

    recurring = {
        span: occ for span, occ in occurrences.items() if len({p for p, _, _ in occ}) >= config.min_span_passages
    }

    def covers(longer: list[tuple[int, int, int]], shorter: list[tuple[int, int, int]]) -> bool:
        return all(any(lp == sp and ls <= ss and se <= le for lp, ls, le in longer) for sp, ss, se in shorter)

    kept = []
    for span, occ in recurring.items():
        if config.maximal_only and any(
            len(other) > len(span) and covers(other_occ, occ) for other, other_occ in recurring.items()
        ):
            continue
        kept.append((span, sorted(occ)))

    kept.sort(key=lambda item: (item[1][0][0], item[1][0][1], len(item[0])))
    return [
        SpanCluster(span=" ".join(span), occurrences=tuple((passages[p][0], s, e) for p, s, e in occ))
        for span, occ in kept
    ]
