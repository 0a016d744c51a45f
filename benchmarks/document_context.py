"""Label-free, training-free context in the embedding space: does it beat the encoder alone on the shared sets?

Three ways of giving MiniLM's scores more context, none of which trains anything or reads a label:

- ``document``: each passage's vector plus ``alpha`` times the mean vector of its document (title group), i.e.
  ``s(q, p) + alpha * s(q, mean of p's document)`` in one inner-product index (inner product is linear): passage
  evidence plus document evidence, for passages cut from the middle of an article that never name its subject.
  Related: document-level score fusion in passage retrieval; contextual chunk embeddings (late chunking, CDE).
- ``feedback``: dense pseudo-relevance feedback (Rocchio in the embedding space): the query vector plus ``beta``
  times the mean of its top-``k`` passages' vectors, searched again.
- ``sentences``: each passage also scored by its best sentence (``title [SEP] sentence`` through the passage tower),
  ``s(q, p) + lam * max_sentence s(q, sentence)``; ``lam = inf`` ranks by the best sentence alone. A trivia clue or
  a FAQ answer often sits in one sentence of a 100-word passage whose mean-pooled vector dilutes it.

Reported: wiki trivia top-k answer accuracy (DPR string match) and pydocs nDCG@10 / R@100, both labelled splits,
paired t-test p against the encoder alone (top-20 for wiki, nDCG@10 for pydocs). Nothing is chosen on them here;
a setting that helped would still need a label-free way to pick its weight.

    python benchmarks/document_context.py --variant document --wiki ../shared/data/wiki \\
        --pydocs ../shared/data/pydocs --cache $RUNS/document-context
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
GRIDS = {
    "document": [{"alpha": a} for a in (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)],
    "feedback": [{"k": k, "beta": b} for k in (3, 5, 10) for b in (0.3, 0.6)] + [{"k": 10, "beta": 1.0}],
    "sentences": [{"lam": x} for x in (0.25, 0.5, 1.0, 2.0, float("inf"))],
}


def document_means(embeddings: np.ndarray, groups: list[str]) -> np.ndarray:
    """Row ``i``: the mean of the embeddings of every passage in ``groups[i]``'s group (itself included)."""
    rows: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        rows[g].append(i)
    out = np.empty_like(embeddings)
    for members in rows.values():
        out[members] = embeddings[members].mean(axis=0)
    return out


def split_sentences(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Every passage's sentences, in passage order, and the index of each passage's first sentence."""
    sentences, starts = [], []
    for text in texts:
        starts.append(len(sentences))
        sentences += [s for s in SENTENCE.split(text) if s.strip()] or [text]
    return sentences, np.asarray(starts)


def sentence_embeddings(encoder, texts, titles, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every passage's sentences through the passage tower (``title [SEP] sentence``), cached, and ``starts``."""
    from _frozen_corpus import cached_passage_embeddings

    sentences, starts = split_sentences(texts)
    owner = np.repeat(np.arange(len(texts)), np.diff(np.append(starts, len(sentences))))
    key = hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:12]
    embeddings = cached_passage_embeddings(encoder, sentences, [titles[i] for i in owner], cache, "sentences", key)
    return embeddings, starts


def context_scores(
    variant: str,
    Q: np.ndarray,
    P: np.ndarray,
    setting: dict | None,
    means: np.ndarray | None = None,
    sentences: np.ndarray | None = None,
    starts: np.ndarray | None = None,
) -> np.ndarray:
    """Scores ``(queries, passages)`` of one variant's ``setting`` (``None``: the encoder alone, ``Q @ P.T``).

    :param means: ``document``'s per-passage document means (:func:`document_means`).
    :param sentences: ``sentences``' sentence embeddings, grouped by passage in passage order; ``starts`` gives each
        passage's first row (:func:`split_sentences`).
    """
    base = Q @ P.T
    if setting is None:
        return base
    if variant == "document":
        return Q @ (P + setting["alpha"] * means).T
    if variant == "feedback":
        top = np.argpartition(-base, setting["k"], axis=1)[:, : setting["k"]]
        return (Q + setting["beta"] * P[top].mean(axis=1)) @ P.T
    if variant == "sentences":
        best = np.maximum.reduceat(Q @ sentences.T, starts, axis=1)
        return best if np.isinf(setting["lam"]) else base + setting["lam"] * best
    raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(GRIDS)}")


def main(argv=None) -> int:
    from _frozen_corpus import frozen_passage_embeddings, print_splits_table, split_row
    from bench_embedding import cpu_description

    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path
    from spart.evaluation.datasets import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(GRIDS), required=True)
    parser.add_argument("--wiki", help="DPR data set directory (wiki): trivia test and train")
    parser.add_argument("--pydocs", help="BEIR data set directory (pydocs): test and train")
    parser.add_argument("--model", help="encoder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--cache", type=Path, required=True, help="directory for cached embeddings")
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = parser.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    cpu = cpu_description()
    print(f"# CPU: {cpu['model']}, {cpu['cpus']} CPUs, flags of interest: {' '.join(cpu['key_flags'])}")
    encoder = DualEncoder.load(args.model or packaged_minilm_path(), device="cpu")
    results: dict = {"cpu": cpu, "variant": args.variant, "sets": {}}

    for name, directory in (("wiki", args.wiki), ("pydocs", args.pydocs)):
        if not directory:
            continue
        splits = {s: load_dataset(directory, s) for s in ("test", "train")}
        passages = list(splits["test"].passages())
        ids, texts, titles = [p.id for p in passages], [p.text for p in passages], [p.title for p in passages]
        start = time.perf_counter()
        P = frozen_passage_embeddings(encoder, ids, texts, titles, args.cache).astype(np.float32)
        context: dict = {}
        if args.variant == "document":
            context["means"] = document_means(P, titles)
        elif args.variant == "sentences":
            context["sentences"], context["starts"] = sentence_embeddings(encoder, texts, titles, args.cache)
        print(f"# {name}: {len(ids)} passages, {len(set(titles))} documents ({time.perf_counter() - start:.0f} s)")

        table: list[dict] = []
        queries = {s: encoder.encode_queries([q.text for q in d.queries], batch_size=64) for s, d in splits.items()}
        for setting in [None, *GRIDS[args.variant]]:
            row: dict = {"setting": setting or "encoder alone"}
            for split, data in splits.items():
                scores = context_scores(args.variant, queries[split], P, setting, **context)
                top = np.argsort(-scores, axis=1)[:, :100]
                row[split] = split_row(top, data, ids, texts, ("ndcg@10", "recall@100"))
            table.append(row)
        labels = [
            row["setting"]
            if isinstance(row["setting"], str)
            else " ".join(f"{k}={v:g}" for k, v in row["setting"].items())
            for row in table
        ]
        title = f"{name} ({', '.join(f'{s} {len(d.queries)} q.' for s, d in splits.items())})"
        print_splits_table(title, table, labels, splits, "the encoder alone")
        results["sets"][name] = table
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
