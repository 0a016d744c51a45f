"""Pieces shared by the experiments over one frozen corpus encoding (``expansion_distill.py``, ``title_cloze.py``,
``document_context.py``, ``encoder_ensemble.py``): passage embeddings, cached; DPR answer hits and BEIR metrics of
row-number rankings; the both-splits table with paired p-values against the first row."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def cached_passage_embeddings(
    base, texts: list[str], titles: list[str], cache_dir: Path, kind: str, key: str
) -> np.ndarray:
    """``base``'s passage-tower embeddings of ``texts`` (with their ``titles``), cached under ``cache_dir`` as
    ``{kind}-{tower fingerprint}-{key}.npy`` (``key``: a digest of what the texts are), written atomically."""
    from spart.atomic import atomic_write

    cached = cache_dir / f"{kind}-{base.passage_fingerprint}-{key}.npy"
    if cached.exists():
        return np.load(cached)
    embeddings = base.encode_passages(texts, titles, batch_size=64, show_progress=True)
    with atomic_write(cached) as f:
        np.save(f, embeddings)
    return embeddings


def frozen_passage_embeddings(base, ids: list[str], texts: list[str], titles: list[str], cache_dir: Path) -> np.ndarray:
    """The base encoder's passage embeddings, cached under ``cache_dir`` by its passage fingerprint and the ids."""
    corpus_key = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
    return cached_passage_embeddings(base, texts, titles, cache_dir, "passages", corpus_key)


def dpr_hits_row(top, data, texts: list[str]) -> dict:
    """Top-1/5/20/100 answer accuracy (DPR string match) of the row-number rankings ``top`` (one row per question of
    ``data``, best first), with the per-question top-5 and top-20 hits for paired tests."""
    from spart.evaluation.answers import hits_for_ranking
    from spart.evaluation.metrics import top_k_accuracy

    hits = [hits_for_ranking(x.answers, [texts[j] for j in top[i]]) for i, x in enumerate(data.queries)]
    row = {f"top{k}": v for k, v in top_k_accuracy(hits, (1, 5, 20, 100)).items()}
    row["hits20"] = [float(any(h[:20])) for h in hits]
    row["hits5"] = [float(any(h[:5])) for h in hits]
    return row


def trivia_hits(encoder, index, data, texts: list[str]) -> dict:
    """:func:`dpr_hits_row` of ``encoder``'s queries searched over ``index`` (row numbers)."""
    _, top = index.search(encoder.encode_queries([x.text for x in data.queries], batch_size=64), 100)
    return dpr_hits_row(top, data, texts)


def print_trivia_table(evals: dict[str, dict], label: str, dev_columns: dict[str, str]) -> None:
    """One line per evaluation (the first is the base): pseudo-dev columns (``{header: metric}`` of
    ``row["pseudo_dev"]``), then trivia test and train top-k, with paired t-test p of top-20 against the base."""
    from spart.evaluation.significance import paired_significance

    base = next(iter(evals.values()))
    width = max(5, len(label), *(len(k) for k in evals))
    dev = "".join(f" {h:>8s}" for h in dev_columns)
    print(
        f"\n{label:>{width}s}{dev} {'test t1':>7s} {'t5':>5s} {'t20':>5s} {'t100':>5s} {'p20':>6s} "
        f"{'train t5':>8s} {'t20':>5s} {'t100':>5s} {'p20':>6s}"
    )
    for key, row in evals.items():
        p_test = paired_significance(row["test"]["hits20"], base["test"]["hits20"])
        p_train = paired_significance(row["train"]["hits20"], base["train"]["hits20"])
        t, tr = row["test"], row["train"]
        dev = "".join(f" {row['pseudo_dev'][m]:8.3f}" for m in dev_columns.values())
        print(
            f"{key:>{width}s}{dev} {100 * t['top1']:7.1f} {100 * t['top5']:5.1f} {100 * t['top20']:5.1f} "
            f"{100 * t['top100']:5.1f} {p_test:6.3f} {100 * tr['top5']:8.1f} {100 * tr['top20']:5.1f} "
            f"{100 * tr['top100']:5.1f} {p_train:6.3f}"
        )


def split_row(top, data, ids: list[str], texts: list[str], beir_metrics: tuple[str, ...]) -> dict:
    """One split's metrics of the row-number rankings ``top``: DPR top-k answer accuracy, or the BEIR
    ``beir_metrics`` (nDCG@10 first); ``per_query`` holds the main metric's per-question values (top-20 hit,
    nDCG@10) for the paired test."""
    from spart.evaluation.metrics import beir_metrics as compute

    if data.kind == "dpr":
        row = dpr_hits_row(top, data, texts)
        row["per_query"] = row.pop("hits20")
        del row["hits5"]
        return row
    ranked = {q.id: [ids[j] for j in top[i]] for i, q in enumerate(data.queries)}
    means, per_query = compute(data.qrels, ranked, beir_metrics)
    return {**means, "per_query": [per_query[q]["ndcg@10"] for q in sorted(per_query)]}


def print_splits_table(title: str, table: list[dict], labels: list[str], splits, against: str) -> None:
    """Print one line per row of ``table`` (``row[split]`` from :func:`split_row`): every metric of every split,
    then the paired t-test p of the main metric against the first row (``against`` names it), per split."""
    from spart.evaluation.significance import paired_significance

    base = table[0]
    metrics = [m for m in base["test"] if m != "per_query"]
    main_metric = "top20" if "top20" in metrics else "ndcg@10"
    print(f"\n{title}; p: paired t-test of {main_metric} against {against}")
    width = max(22, *(len(x) for x in labels))
    header = " ".join(f"{s[:5]} {m:>10s}" for s in splits for m in metrics)
    print(f"{'system':>{width}s} {header} {'p test':>7s} {'p train':>7s}")
    for label, row in zip(labels, table):
        cells = " ".join(f"{row[s][m]:16.3f}" for s in splits for m in metrics)
        ps = " ".join(f"{paired_significance(row[s]['per_query'], base[s]['per_query']):7.3f}" for s in splits)
        print(f"{label:>{width}s} {cells} {ps}")
