"""Title-cloze questions from the corpus's own structure: a label-free signal aimed at entity questions.

A trivia question describes an entity without naming it and its answer passage is very often the entity's own
page (49 of the 133 trivia-test answers are a title of the shared wiki corpus). Wikipedia says the same thing
about its entities from other pages: a sentence of page A that names the title T of page B is a description of T
in A's words. This experiment turns every such sentence into a question for T: the mention is replaced by
"what" (a cloze), the sentence ends in "?", and its relevant passages are T's passages. The same idea, with
hyperlinks instead of title matching, is Zhou et al. (2022), *Hyperlink-induced Pre-training for Passage Retrieval
in Open-domain QA*; no hyperlink survives in the shared corpus, so mentions are found by matching titles.

Training (``train``): MiniLM's query tower only; the passage tower, and so the index, stay the base's, so the
whole corpus is every question's candidate set (15.5k frozen passage embeddings in one matrix product) and
nothing is re-indexed. Loss: multi-positive InfoNCE over the corpus at temperature ``tau``,
``-log sum_{p in T} e^{s_p / tau} / sum_{p not in A} e^{s_p / tau}``; the source passage A is left out of the
denominator (the masked sentence is still A's text; pushing it down would teach the tower to avoid passages that
share the question's words). Selection: held-out titles' cloze questions (pseudo-dev, no human label). Trivia
test and train top-k are reported only.

    python benchmarks/title_cloze.py mine --corpus ../shared/data/wiki/passages.tsv --out $RUNS/title-cloze
    python benchmarks/title_cloze.py train --corpus ../shared/data/wiki/passages.tsv --out $RUNS/title-cloze \\
        --dataset ../shared/data/wiki
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
WORD = re.compile(r"\w+(?:['.-]\w+)*")


def match_key(title: str) -> tuple[str, ...]:
    """The words a mention of ``title`` must spell, case kept: the title without a trailing parenthetical."""
    return tuple(WORD.findall(re.sub(r"\s*\(.*\)\s*$", "", title)))


def mine(passages, *, max_per_title: int, min_words: int, max_words: int, seed: int) -> list[dict]:
    """Cloze questions: ``{"question", "title", "source"}``, at most ``max_per_title`` per title (sampled)."""
    by_first: dict[str, list[tuple[tuple[str, ...], str]]] = defaultdict(list)
    for title in {p.title for p in passages}:
        key = match_key(title)
        if key and (len(key) > 1 or len(key[0]) >= 4):
            by_first[key[0]].append((key, title))
    for keys in by_first.values():
        keys.sort(key=lambda kt: -len(kt[0]))  # the longest title first
    found: dict[str, list[dict]] = defaultdict(list)
    for p in passages:
        own = set(match_key(p.title))
        for sentence in SENTENCE.split(p.text):
            spans = [(m.start(), m.end(), m.group()) for m in WORD.finditer(sentence)]
            if len(spans) < min_words:
                continue
            words = [w for _, _, w in spans]
            i = 0
            while i < len(words):
                for key, title in by_first.get(words[i], ()):
                    n = len(key)
                    if tuple(words[i : i + n]) != key:
                        continue
                    if title == p.title or set(key) <= own or (n == 1 and i == 0):
                        break  # the page itself, a part of its own title, or a capitalised first word
                    if len(words) - n < min_words - 1 or len(words) > max_words:
                        break
                    start, end = spans[i][0], spans[i + n - 1][1]
                    if re.match(r"\s?[-\u2013]|\s[A-Z]", sentence[end:]) or (
                        i > 1 and re.search(r"[A-Z][\w'.-]*\s$", sentence[:start])
                    ):
                        break  # part of a longer name: "Customs and Border Protection", "Lake Michigan-Huron"
                    q = (sentence[:start] + "what" + sentence[end:]).strip()
                    q = re.sub(r"[.!]$", "", q).rstrip() + "?"
                    found[title].append({"question": q[0].upper() + q[1:], "title": title, "source": p.id})
                    i += n - 1
                    break
                i += 1
    rng = random.Random(seed)
    out = []
    for title in sorted(found):
        rows = found[title]
        out += rng.sample(rows, min(max_per_title, len(rows)))
    return out


def cmd_mine(args) -> int:
    from spart.data import read_passages

    passages = list(read_passages(args.corpus))
    rows = mine(
        passages, max_per_title=args.max_per_title, min_words=args.min_words, max_words=args.max_words, seed=args.seed
    )
    titles = sorted({r["title"] for r in rows})
    rng = random.Random(args.seed)
    dev_titles = set(rng.sample(titles, max(1, int(args.dev_fraction * len(titles)))))
    args.out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "dev"):
        part = [r for r in rows if (r["title"] in dev_titles) == (split == "dev")]
        if split == "dev":
            part = random.Random(args.seed).sample(part, min(args.dev_size, len(part)))
        tmp = args.out / f"cloze-{split}.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
        tmp.replace(args.out / f"cloze-{split}.jsonl")
        print(f"# {split}: {len(part)} questions for {len({r['title'] for r in part})} titles")
    for r in random.Random(args.seed + 1).sample(rows, 12):
        print(f"  [{r['title']}] {r['question']}")
    return 0


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cmd_train(args) -> int:
    import numpy as np
    import torch
    from _frozen_corpus import frozen_passage_embeddings, print_trivia_table, trivia_hits
    from bench_embedding import cpu_description

    from spart.data import read_passages
    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path
    from spart.evaluation.datasets import load_dataset
    from spart.index import DenseIndex
    from spart.training.schedule import linear_warmup_decay

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    passages = list(read_passages(args.corpus))
    ids, texts, titles = [p.id for p in passages], [p.text for p in passages], [p.title for p in passages]
    row_of = {pid: i for i, pid in enumerate(ids)}
    rows_of_title: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(titles):
        rows_of_title[t].append(i)

    base = DualEncoder.load(args.base or packaged_minilm_path(), device="cpu", backend="torch")
    P = frozen_passage_embeddings(base, ids, texts, titles, args.cache or args.out)
    Pt = torch.from_numpy(P)
    index = DenseIndex(P.shape[1], "Flat")
    index.add(P)

    train_rows = read_rows(args.out / "cloze-train.jsonl")
    dev_rows = read_rows(args.out / "cloze-dev.jsonl")
    if args.limit:
        train_rows = random.Random(args.seed).sample(train_rows, min(args.limit, len(train_rows)))
    print(f"# {len(train_rows)} training / {len(dev_rows)} pseudo-dev cloze questions", flush=True)
    test = load_dataset(args.dataset, "test")
    train_set = load_dataset(args.dataset, "train")

    def evaluate(encoder, index=index) -> dict:
        row = {}
        _, top = index.search(encoder.encode_queries([r["question"] for r in dev_rows], batch_size=64), 100)
        rr, hit20 = [], []
        for i, r in enumerate(dev_rows):
            pos = set(rows_of_title[r["title"]])
            rank = next((k for k, j in enumerate(top[i]) if j in pos), None)
            rr.append(0.0 if rank is None or rank >= 10 else 1.0 / (rank + 1))
            hit20.append(float(rank is not None and rank < 20))
        row["pseudo_dev"] = {"mrr10": float(np.mean(rr)), "top20": float(np.mean(hit20)), "per_query": rr}
        for name, data in (("test", test), ("train", train_set)):
            row[name] = trivia_hits(encoder, index, data, texts)
        return row

    results_path = args.out / f"train-{args.tag}.json"
    results = {"cpu": cpu_description(), "args": {k: str(v) for k, v in vars(args).items()}, "evals": {}}
    results["evals"]["0"] = evaluate(base)
    print(f"step 0 pseudo-dev MRR@10 {results['evals']['0']['pseudo_dev']['mrr10']:.3f}", flush=True)

    both = args.towers == "both"
    student = DualEncoder.load(
        args.base or packaged_minilm_path(), device="cpu", backend="torch", precision="fp32", shared=both
    )
    if not both:
        for p in student.passage_model.parameters():
            p.requires_grad_(False)
    optimiser = torch.optim.AdamW(student.query_model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = (len(train_rows) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    schedule = linear_warmup_decay(optimiser, max(1, int(0.1 * total)), total)
    positives = [torch.tensor(rows_of_title[r["title"]]) for r in train_rows]
    sources = [row_of[r["source"]] for r in train_rows]

    def corpus_loss(q: torch.Tensor, idx: list[int]) -> torch.Tensor:
        """Multi-positive InfoNCE over the frozen corpus; the question's source passage left out."""
        logits = q @ Pt.T / args.tau  # (batch, corpus)
        mask = torch.zeros_like(logits, dtype=torch.bool)
        for k, i in enumerate(idx):
            mask[k, sources[i]] = True
        logits = logits.masked_fill(mask, float("-inf"))
        pos = torch.full_like(logits, float("-inf"))
        for k, i in enumerate(idx):
            pos[k, positives[i]] = logits[k, positives[i]]
        return (torch.logsumexp(logits, 1) - torch.logsumexp(pos, 1)).mean()

    start, step, losses = time.perf_counter(), 0, []
    for epoch in range(args.epochs):
        order = torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(args.seed + epoch)).tolist()
        for b in range(0, len(order), args.batch_size):
            student.train()
            idx = order[b : b + args.batch_size]
            q = student.embed(student.tokenize_queries([train_rows[i]["question"] for i in idx]), "query")
            if both:  # in-batch negatives: each question's title's first passage, the others' as negatives
                first = [rows_of_title[train_rows[i]["title"]][0] for i in idx]
                p = student.embed(
                    student.tokenize_passages([texts[j] for j in first], [titles[j] for j in first]), "passage"
                )
                logits = q @ p.T / args.tau
                same = torch.tensor([[a == b for b in first] for a in first])
                logits = logits.masked_fill(same & ~torch.eye(len(idx), dtype=torch.bool), float("-inf"))
                loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)))
            else:
                loss = corpus_loss(q, idx)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.query_model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            step += 1
            losses.append(float(loss.detach()))
            if step % args.eval_every == 0 or step == total:
                student.eval()
                if both:
                    with torch.inference_mode():
                        Ps = student.encode_passages(texts, titles, batch_size=64, show_progress=True)
                    index_s = DenseIndex(Ps.shape[1], "Flat")
                    index_s.add(Ps)
                    row = evaluate(student, index_s)
                else:
                    row = evaluate(student)
                row["loss"] = float(np.mean(losses))
                losses = []
                results["evals"][str(step)] = row
                results_path.write_text(json.dumps(results, indent=1))
                print(
                    f"step {step}/{total} loss {row['loss']:.3f} pseudo-dev MRR@10 {row['pseudo_dev']['mrr10']:.3f} "
                    f"test top-20 {100 * row['test']['top20']:.1f} {time.perf_counter() - start:.0f}s",
                    flush=True,
                )
                if args.save:
                    student.save(args.out / f"model-{args.tag}-step{step}")

    print_trivia_table(results["evals"], "step", {"dev MRR": "mrr10", "dev t20": "top20"})
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("mine", help="cloze questions from title mentions")
    m.add_argument("--corpus", required=True)
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--max-per-title", type=int, default=3)
    m.add_argument("--min-words", type=int, default=6)
    m.add_argument("--max-words", type=int, default=40)
    m.add_argument("--dev-fraction", type=float, default=0.05)
    m.add_argument("--dev-size", type=int, default=500)
    m.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train", help="train the query tower on the cloze questions")
    t.add_argument("--corpus", required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--dataset", required=True, help="labelled DPR data set (test and train splits, report only)")
    t.add_argument("--cache", type=Path, help="directory of cached base passage embeddings (default --out)")
    t.add_argument("--base")
    t.add_argument(
        "--towers",
        choices=("query", "both"),
        default="query",
        help="query: the query tower against the frozen corpus; both: shared, in-batch negatives",
    )
    t.add_argument("--tau", type=float, default=0.05)
    t.add_argument("--lr", type=float, default=2e-5)
    t.add_argument("--epochs", type=int, default=1)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--limit", type=int, default=0, help="train on at most this many questions (sampled)")
    t.add_argument("--eval-every", type=int, default=50)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--tag", default="run")
    t.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    return {"mine": cmd_mine, "train": cmd_train}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
