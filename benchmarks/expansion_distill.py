"""Distil query expansion into the query tower: the LM-expanded retriever as a label-free teacher.

On wiki the only label-free system that beats MiniLM on *both* trivia question sets is MiniLM searching with the
question averaged with an LM's closed-book answer (``dense_expand_qa``; docs/adaptation.md, *Query expansion by the
LM's own answer*). A student distils its teacher, so this teacher is a candidate where the question-likelihood
teachers were not: it is better than the student on real questions. This experiment trains MiniLM's query tower to
reproduce the expanded query's ranking, with the passage tower (and so the index) frozen:

- questions: real questions without their answers (ART's premise; here the trivia-train questions) and the
  generated pseudo-train questions of an adapt run;
- teacher: ``softmax(e(q) . P / tau)`` over the whole corpus, ``e(q)`` the expanded query embedding of
  ``DualEncoder.encode_expanded_queries`` (mean of the query embedding and the passage tower's embedding of the
  answer), ``P`` the frozen base passage embeddings;
- student: ``softmax(f(q) . P / tau)``; loss ``KL(teacher || student)``; only ``f`` (a copy of the base) trains;
- selection: pseudo-dev (the adapt run's held-out generated questions, pseudo-qrels only) nDCG@10 per epoch;
- report only: trivia-test and trivia-train top-k (DPR answer matching), paired t-test against the base.

Deviation from ART: ART's teacher is a question likelihood over the student's top K with re-indexing; here the
teacher is a retriever, its distribution covers the whole corpus (15.5k passages fit one matrix product), and
the passage side never changes, so no re-index is needed.

Stages (each resumable; outputs under ``--out``)::

    python benchmarks/expansion_distill.py answers --out $RUNS/expand-distill \\
        --questions ../shared/data/wiki/trivia-train.csv --questions $RUNS/wiki-quiz-pairs/run/questions \\
        --expander $MODELS/qwen2.5-coder-1.5b-instruct
    python benchmarks/expansion_distill.py train --out $RUNS/expand-distill --corpus ../shared/data/wiki/passages.tsv \\
        --pseudo-dev $RUNS/wiki-quiz-pairs/run/questions --dataset ../shared/data/wiki
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def read_questions(source: str) -> list[tuple[str, str]]:
    """``(id, question)`` pairs: a DPR QA csv (first column) or an adapt run's questions/ directory (its
    pseudo-train and pseudo-dev queries, pseudo-train first)."""
    path = Path(source)
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return [(f"{path.stem}:{i}", row[0]) for i, row in enumerate(csv.reader(f, delimiter="\t")) if row]
    queries = {}
    with (path / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    out = []
    for split in ("pseudo-train", "pseudo-dev"):
        with (path / "qrels" / f"{split}.tsv").open(encoding="utf-8") as f:
            ids = [line.split("\t")[0] for line in f if line.strip() and not line.startswith("query-id")]
        out += [(qid, queries[qid]) for qid in dict.fromkeys(ids)]
    return out


def cmd_answers(args) -> int:
    """Closed-book answers by the expander LM, appended to ``answers.jsonl`` as they come (resumed): the
    ``AnswerQueryExpander`` of ``dense_expand_qa``, so the teacher is the pipeline measured in docs/adaptation.md."""
    from spart.components.expanders.answer_query_expander import AnswerQueryExpander

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "answers.jsonl"
    done = load_answers(args.out) if path.exists() else {}
    todo = [(qid, q) for source in args.questions for qid, q in read_questions(source) if qid not in done]
    print(f"# {len(done)} answered, {len(todo)} to go", flush=True)
    if not todo:
        return 0
    expander = AnswerQueryExpander(model=args.expander)
    expander.warm_up()
    start = time.perf_counter()
    with path.open("a", encoding="utf-8") as f:
        for n, (qid, q) in enumerate(todo, 1):
            f.write(json.dumps({"id": qid, "question": q, "answer": expander.run(q)["expansion"]}) + "\n")
            f.flush()
            print(f"# {n}/{len(todo)} answered, {n / (time.perf_counter() - start):.2f} q/s", flush=True)
    return 0


def load_answers(out: Path) -> dict[str, dict]:
    """``answers.jsonl`` by question id."""
    path = out / "answers.jsonl"
    if not path.exists():
        raise SystemExit(f"{path}: run the answers stage first")
    return {row["id"]: row for row in map(json.loads, path.read_text(encoding="utf-8").splitlines())}


def cmd_train(args) -> int:
    """Distil the expanded queries' corpus-wide ranking into the query tower; evaluate every epoch."""
    import numpy as np
    import torch
    from _frozen_corpus import frozen_passage_embeddings, print_trivia_table, trivia_hits
    from bench_embedding import cpu_description

    from spart.data import read_passages
    from spart.encoders import DualEncoder
    from spart.encoders.loading import packaged_minilm_path
    from spart.evaluation.datasets import load_dataset
    from spart.evaluation.metrics import beir_metrics
    from spart.index import DenseIndex
    from spart.training.losses.kl_distillation_loss import KLDistillationLoss
    from spart.training.schedule import linear_warmup_decay

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    answers = load_answers(args.out)
    dev = load_dataset(args.pseudo_dev, "pseudo-dev")
    dev_ids = {q.id for q in dev.queries}
    train_rows = [row for qid, row in answers.items() if qid not in dev_ids]
    print(f"# {len(train_rows)} training questions ({sum(r['id'].startswith('gen:') for r in train_rows)} generated)")
    passages = list(read_passages(args.corpus))
    ids, texts, titles = [p.id for p in passages], [p.text for p in passages], [p.title for p in passages]

    base = DualEncoder.load(args.base or packaged_minilm_path(), device="cpu", backend="torch")
    P = frozen_passage_embeddings(base, ids, texts, titles, args.out)  # the base's frozen passage side
    Pt = torch.from_numpy(P)
    index = DenseIndex(P.shape[1], "Flat")
    index.add(P)  # ids = row numbers

    def expanded_queries(rows: list[dict]) -> np.ndarray:
        """The teacher's query embeddings: expanded by the LM's answer; the plain query where it gave none."""
        out = base.encode_queries([r["question"] for r in rows], batch_size=64)
        has = [i for i, r in enumerate(rows) if r["answer"].strip()]
        out[has] = base.encode_expanded_queries([rows[i]["question"] for i in has], [rows[i]["answer"] for i in has])
        return out

    questions = [r["question"] for r in train_rows]
    teacher = torch.from_numpy(expanded_queries(train_rows)) @ Pt.T / args.tau  # (n, corpus)
    loss_fn = KLDistillationLoss()

    test = load_dataset(args.dataset, "test")
    train_set = load_dataset(args.dataset, "train")

    def evaluate(encoder) -> dict:
        row = {}
        for name, data in (("pseudo_dev", dev), ("test", test), ("train", train_set)):
            _, top = index.search(encoder.encode_queries([x.text for x in data.queries], batch_size=64), 100)
            if data.qrels is not None:
                ranked = {x.id: [ids[j] for j in top[i]] for i, x in enumerate(data.queries)}
                means, per_query = beir_metrics(data.qrels, ranked, ["ndcg@10", "recall@100"])
                row[name] = {**means, "per_query": [per_query[x.id]["ndcg@10"] for x in data.queries]}
            else:
                row[name] = trivia_hits(encoder, index, data, texts)
        return row

    results_path = args.out / f"train-{args.tag}.json"
    results = {"cpu": cpu_description(), "args": {k: str(v) for k, v in vars(args).items()}, "epochs": {}}
    results["epochs"]["0"] = evaluate(base)
    # the teacher on pseudo-dev, label-free: the expanded queries ranked against the pseudo-qrels
    dev_rows = [answers[x.id] for x in dev.queries if x.id in answers]
    if len(dev_rows) == len(dev.queries):
        _, top = index.search(expanded_queries(dev_rows), 100)
        ranked = {x.id: [ids[j] for j in top[i]] for i, x in enumerate(dev.queries)}
        results["teacher_pseudo_dev"] = beir_metrics(dev.qrels, ranked, ["ndcg@10", "recall@100"])[0]
        print(f"# teacher (expanded queries) on pseudo-dev: {results['teacher_pseudo_dev']}")

    student = DualEncoder.load(
        args.base or packaged_minilm_path(), device="cpu", backend="torch", precision="fp32", shared=False
    )
    for p in student.passage_model.parameters():
        p.requires_grad_(False)
    optimiser = torch.optim.AdamW(student.query_model.parameters(), lr=args.lr, weight_decay=0.01)
    steps_per_epoch = (len(train_rows) + args.batch_size - 1) // args.batch_size
    total = steps_per_epoch * args.epochs
    warmup = max(1, int(0.1 * total))
    schedule = linear_warmup_decay(optimiser, warmup, total)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        student.train()
        order = torch.randperm(len(train_rows)).tolist()
        losses = []
        for b in range(0, len(order), args.batch_size):
            idx = order[b : b + args.batch_size]
            q = student.embed(student.tokenize_queries([questions[i] for i in idx]), "query")
            loss = loss_fn(q @ Pt.T / args.tau, teacher[idx])
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.query_model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        student.eval()
        row = evaluate(student)
        row["loss"] = float(np.mean(losses))
        results["epochs"][str(epoch)] = row
        results_path.write_text(json.dumps(results, indent=1))
        print(f"epoch {epoch} loss {row['loss']:.4f} {time.perf_counter() - start:.0f}s", flush=True)
        if args.save:
            student.save(args.out / f"model-{args.tag}-epoch{epoch}")

    print_trivia_table(results["epochs"], "epoch", {"dev nDCG": "ndcg@10"})
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    answers = sub.add_parser("answers", help="closed-book answers by the expander LM")
    answers.add_argument("--out", type=Path, required=True)
    answers.add_argument("--questions", action="append", required=True, help="DPR QA csv or adapt questions/ dir")
    answers.add_argument("--expander", required=True, help="the expander LM (HF directory or GGUF)")
    train = sub.add_parser("train", help="distil the expanded queries into the query tower")
    train.add_argument("--out", type=Path, required=True, help="the answers stage's directory")
    train.add_argument("--corpus", required=True, help="the passages file")
    train.add_argument("--pseudo-dev", required=True, help="an adapt run's questions/ directory")
    train.add_argument("--dataset", required=True, help="labelled DPR data set (test and train splits, report only)")
    train.add_argument("--base", help="base encoder (default: the packaged MiniLM)")
    train.add_argument("--tau", type=float, default=0.05)
    train.add_argument("--lr", type=float, default=2e-5)
    train.add_argument("--epochs", type=int, default=5)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--threads", type=int, default=2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--tag", default="run")
    train.add_argument("--save", action="store_true", help="save the student after every epoch")
    args = parser.parse_args(argv)
    return {"answers": cmd_answers, "train": cmd_train}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
