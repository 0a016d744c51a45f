"""Weight-space ensembles of adapted encoders with the base: WiSE-FT and a uniform soup, chosen on pseudo-dev.

Fine-tuning from MiniLM on generated questions lifts held-out *generated* questions and leaves real trivia questions
level (docs/adaptation.md). Interpolating the fine-tuned weights with the base's, ``(1 - a) * base + a * tuned``
(WiSE-FT, Wortsman et al. 2022), and averaging several fine-tunes of one base (a uniform model soup, Wortsman et al.
2022) are the standard label-free ways to keep the base's robustness while keeping what was learned: both give one
encoder of the base's size and speed. This experiment measures them on the wiki trivia questions, every candidate
scored on pseudo-dev (generated questions, no human label) so the choice among them is label-free; the real
questions are reported for every candidate so the reader sees what the choice cost.

    python benchmarks/weight_interpolation.py --corpus ../shared/data/wiki/passages.tsv --dataset ../shared/data/wiki \\
      --pseudo-dev $RUNS/wiki-quiz-pairs/run/questions --model pairs=$RUNS/wiki-quiz-pairs/run/model \\
      --model distil=$RUNS/expand-distill/model-kl-t005-epoch5 \\
      --model generic=$RUNS/adapt-wiki-expand/run/pairs/final --alphas 0.25,0.5,0.75,1 --out $RUNS/wise-ft

Each tower is interpolated on its own: a model whose towers are shared with the base's on one side (a query tower
trained against a frozen index) keeps the base's passage embeddings, so only changed passage towers re-encode the
corpus (cached by weight fingerprint).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def interpolated(base, tuned: list, weights: list[float]):
    """A two-tower copy of ``base`` whose every tensor is ``(1 - sum(w)) * base + sum(w_i * tuned_i)``, per tower."""
    import copy

    import torch

    from spart.encoders import DualEncoder

    out = DualEncoder(
        copy.deepcopy(base.tower("query")),
        base.tokenizer,
        passage_model=copy.deepcopy(base.tower("passage")),
        config=base.config.with_overrides(shared=False),
        device="cpu",
        precision="auto",
        backend="torch",
    )
    keep = 1.0 - sum(weights)
    for role in ("query", "passage"):
        target = out.tower(role).state_dict()
        sources = [m.tower(role).state_dict() for m in tuned]
        base_state = base.tower(role).state_dict()
        with torch.no_grad():
            for name, value in target.items():
                if not value.is_floating_point() or all(torch.equal(s[name], base_state[name]) for s in sources):
                    continue  # a tower left as the base's stays bit-identical, so its cached corpus is reused
                mixed = keep * base_state[name].float()
                for w, s in zip(weights, sources):
                    mixed += w * s[name].float()
                value.copy_(mixed)
    out.eval()
    return out


def pseudo_dev_scores(encoder, index, dev, ids: list[str]) -> dict:
    """nDCG@10 and MRR@10 of ``encoder`` on pseudo-dev (a spart question directory's ``pseudo-dev`` split, loaded
    by :func:`spart.evaluation.datasets.load_dataset`), with the per-question nDCG@10 for paired tests."""
    from spart.evaluation.metrics import beir_metrics

    _, top = index.search(encoder.encode_queries([q.text for q in dev.queries], batch_size=64), 10)
    ranked = {q.id: [ids[j] for j in top[i]] for i, q in enumerate(dev.queries)}
    means, per_query = beir_metrics(dev.qrels, ranked, ["ndcg@10", "mrr@10"])
    return {
        "ndcg10": means["ndcg@10"],
        "mrr10": means["mrr@10"],
        "per_query": [v["ndcg@10"] for v in per_query.values()],
    }


def main(argv=None) -> int:
    import torch
    from _frozen_corpus import frozen_passage_embeddings, print_trivia_table, trivia_hits
    from bench_embedding import cpu_description

    from spart.data import read_passages
    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path
    from spart.evaluation.datasets import load_dataset
    from spart.evaluation.significance import paired_significance
    from spart.index import DenseIndex

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--dataset", type=Path, required=True, help="DPR-format dataset with trivia-test/train")
    parser.add_argument("--pseudo-dev", type=Path, required=True, help="a spart question directory (selection set)")
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH of a model fine-tuned from --base")
    parser.add_argument("--base", default=None, help="the base encoder (default: the packaged MiniLM)")
    parser.add_argument("--alphas", default="0.25,0.5,0.75,1")
    parser.add_argument("--no-soup", action="store_true", help="skip the uniform soup of all --model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    passages = list(read_passages(args.corpus))
    ids, texts, titles = [p.id for p in passages], [p.text for p in passages], [p.title for p in passages]
    test, train = load_dataset(args.dataset, "test"), load_dataset(args.dataset, "train")
    dev = load_dataset(args.pseudo_dev, "pseudo-dev")

    def load(location):
        return DualEncoder.load(location, device="cpu", precision="auto", backend="torch")

    base = load(args.base or packaged_minilm_path())
    tuned = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        tuned[name] = load(path)
    alphas = [float(a) for a in args.alphas.split(",")]
    candidates = {"base": (base, None)}
    for name, model in tuned.items():
        for a in alphas:
            candidates[f"{name}@{a:g}"] = (None, ([model], [a]))
    if len(tuned) > 1 and not args.no_soup:
        for a in alphas:
            candidates[f"soup@{a:g}"] = (None, (list(tuned.values()), [a / len(tuned)] * len(tuned)))

    results_path = args.out / "weight-interpolation.json"
    results = {"cpu": cpu_description(), "args": {k: str(v) for k, v in vars(args).items()}, "evals": {}}
    for key, (encoder, mix) in candidates.items():
        if encoder is None:
            encoder = interpolated(base, *mix)
        with torch.inference_mode():
            P = frozen_passage_embeddings(encoder, ids, texts, titles, args.out)
            index = DenseIndex(P.shape[1], "Flat")
            index.add(P)
            row = {"pseudo_dev": pseudo_dev_scores(encoder, index, dev, ids)}
            row["test"] = trivia_hits(encoder, index, test, texts)
            row["train"] = trivia_hits(encoder, index, train, texts)
        results["evals"][key] = row
        results_path.write_text(json.dumps(results, indent=1))
        print(
            f"{key}: pseudo-dev nDCG@10 {row['pseudo_dev']['ndcg10']:.3f}, trivia test top-20 "
            f"{100 * row['test']['top20']:.1f}, train top-20 {100 * row['train']['top20']:.1f}",
            flush=True,
        )

    base_dev = results["evals"]["base"]["pseudo_dev"]["per_query"]
    for row in results["evals"].values():
        row["pseudo_dev"]["p"] = paired_significance(row["pseudo_dev"]["per_query"], base_dev)
    results_path.write_text(json.dumps(results, indent=1))
    print(f"\n# {results['cpu']}")
    print_trivia_table(results["evals"], "model", {"dev nDCG": "ndcg10", "dev p": "p"})
    chosen = max(results["evals"], key=lambda k: results["evals"][k]["pseudo_dev"]["ndcg10"])
    print(f"\nchosen on pseudo-dev (highest nDCG@10): {chosen}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
