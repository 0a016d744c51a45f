"""Few-shot supervised data for the contrastive trainer: labelled (question, positive passage) pairs with BM25
hard negatives, as DPR trains.

Sources: BEIR qrels (``qrels/<split>.tsv`` + ``queries.jsonl`` + ``corpus.jsonl``) or DPR's training JSON
(``question``, ``positive_ctxs``, ``hard_negative_ctxs``). Hard negatives are the top BM25 passages for the
question that are not relevant to it (DPR's "BM25 negatives"); for DPR JSON the file's own
``hard_negative_ctxs`` are used unless a corpus is given to mine from.

The dataset yields the same example format as SPIDER's (``query``, ``positive``, ``negative``), so one trainer
and one loss serve both. One example per question; across epochs the positive cycles through the question's
relevant passages and the negative through its mined negatives (DPR samples a positive and a hard negative
per epoch; we cycle deterministically so a resumed run sees the same examples).

Usage::

    data = SupervisedPairs.from_beir("../shared/data/pydocs", split="train", bm25_negatives=10)
    data.set_epoch(0); data[0]   # {"query": ..., "positive": Passage, "negative": Passage, ...}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spart.data.passages import Passage

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledQuestion:
    """A question, the ids of its relevant passages, and its hard-negative passage ids (best first)."""

    text: str
    positive_ids: tuple[str, ...]
    negative_ids: tuple[str, ...] = ()


class SupervisedPairs:
    """Indexable few-shot examples with ``set_epoch`` (see the module docstring).

    :param questions: the labelled questions.
    :param passages: every passage referenced by a question, by id.
    """

    def __init__(self, questions: Sequence[LabelledQuestion], passages: Mapping[str, Passage]) -> None:
        if not questions:
            raise ValueError("no labelled questions")
        for q in questions:
            if not q.text.strip():
                raise ValueError("a labelled question has an empty text")
            if not q.positive_ids:
                raise ValueError(f"question {q.text!r} has no positive passage")
            missing = [pid for pid in (*q.positive_ids, *q.negative_ids) if pid not in passages]
            if missing:
                raise ValueError(f"question {q.text!r} refers to passage ids not in the corpus: {missing[:5]}")
        self.questions = list(questions)
        self.passages = passages
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.questions)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        q = self.questions[index]
        positive = q.positive_ids[self.epoch % len(q.positive_ids)]
        negative = q.negative_ids[self.epoch % len(q.negative_ids)] if q.negative_ids else None
        return {
            "query": q.text,
            "positive": self.passages[positive],
            "negative": self.passages[negative] if negative is not None else None,
            "positive_ids": q.positive_ids,
        }

    # ------------------------------------------------------------------ sources
    @classmethod
    def from_beir(cls, beir_dir: str | Path, split: str = "train", bm25_negatives: int = 10) -> SupervisedPairs:
        """Questions of ``qrels/<split>.tsv`` (score > 0 = relevant), negatives mined by BM25 over the corpus."""
        from spart.data.readers import read_beir_corpus, read_beir_qrels, read_beir_queries

        beir_dir = Path(beir_dir)
        qrels_path = beir_dir / "qrels" / f"{split}.tsv"
        qrels = read_beir_qrels(qrels_path)
        queries = {q.id: q.text for q in read_beir_queries(beir_dir / "queries.jsonl")}
        corpus = list(read_beir_corpus(beir_dir / "corpus.jsonl"))
        by_id = {p.id: p for p in corpus}
        labelled = []
        for qid in sorted(qrels, key=_natural_key):
            positives = tuple(sorted((pid for pid, s in qrels[qid].items() if s > 0), key=_natural_key))
            if not positives:
                continue
            if qid not in queries:
                raise ValueError(f"{qrels_path}: query id {qid!r} is not in queries.jsonl")
            missing = [pid for pid in positives if pid not in by_id]
            if missing:
                raise ValueError(f"{qrels_path}: query {qid!r} refers to corpus ids not in corpus.jsonl: {missing[:5]}")
            labelled.append(LabelledQuestion(queries[qid], positives))
        if bm25_negatives > 0:
            labelled = with_bm25_negatives(labelled, corpus, bm25_negatives)
        return cls(labelled, by_id)

    @classmethod
    def from_dpr_json(
        cls, path: str | Path, corpus: str | Path | None = None, bm25_negatives: int = 10
    ) -> SupervisedPairs:
        """DPR's training JSON. Passages without an id get one from their title and text. With ``corpus``
        (DPR TSV or BEIR jsonl) negatives are mined by BM25 over it; otherwise ``hard_negative_ctxs`` are used."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"DPR training file not found: {path}")
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON: {error}") from error
        if not isinstance(records, list):
            raise ValueError(f"{path}: expected a JSON list of questions")
        passages: dict[str, Passage] = {}
        labelled = []
        for n, record in enumerate(records):
            question = record.get("question") if isinstance(record, dict) else None
            if not isinstance(question, str) or not question.strip():
                raise ValueError(f"{path}: record {n} has no question")
            positives = [_dpr_ctx(c, passages, path, n) for c in record.get("positive_ctxs") or []]
            if not positives:
                continue  # DPR skips questions without a positive too
            negatives = [_dpr_ctx(c, passages, path, n) for c in record.get("hard_negative_ctxs") or []]
            negatives = [pid for pid in negatives if pid not in positives]
            labelled.append(LabelledQuestion(question, tuple(positives), tuple(negatives)))
        if not labelled:
            raise ValueError(f"{path}: no question has a positive context")
        if corpus is not None and bm25_negatives > 0:
            from spart.data.readers import read_passages

            corpus_passages = list(read_passages(corpus))
            passages.update({p.id: p for p in corpus_passages})
            labelled = with_bm25_negatives(
                [LabelledQuestion(q.text, q.positive_ids) for q in labelled], corpus_passages, bm25_negatives
            )
        return cls(labelled, passages)


def with_bm25_negatives(
    questions: Sequence[LabelledQuestion], corpus: Sequence[Passage], k: int
) -> list[LabelledQuestion]:
    """Each question with its top-``k`` BM25 passages (over ``title text``) that are not relevant to it."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    from tqdm.auto import tqdm

    from spart.bm25 import BM25Index, Tokenizer

    tokenizer = Tokenizer(stopwords="en")
    index = BM25Index()
    index.build(tokenizer(f"{p.title} {p.text}") for p in corpus)
    out = []
    for q in tqdm(questions, desc="BM25 negatives", unit="question", disable=len(questions) < 500):
        relevant = set(q.positive_ids)
        _, positions = index.search(tokenizer(q.text), k=k + len(relevant))
        negatives = [corpus[i].id for i in positions if corpus[i].id not in relevant][:k]
        if not negatives:
            logger.warning("no BM25 negative for question %r (no query term in the corpus)", q.text)
        out.append(LabelledQuestion(q.text, q.positive_ids, tuple(negatives)))
    return out


def _dpr_ctx(ctx: Any, passages: dict[str, Passage], path: Path, n: int) -> str:
    if not isinstance(ctx, dict) or not isinstance(ctx.get("text"), str) or not ctx["text"].strip():
        raise ValueError(f"{path}: record {n} has a context without text")
    title = ctx.get("title") or ""
    pid = ctx.get("passage_id") or ctx.get("psg_id") or ctx.get("id")
    if pid is None or pid == "":
        import hashlib

        pid = "dpr:" + hashlib.sha1(f"{title}\n{ctx['text']}".encode()).hexdigest()[:16]
    pid = str(pid)
    passages.setdefault(pid, Passage(id=pid, text=ctx["text"], title=title))
    return pid


def _natural_key(value: str) -> tuple:
    """``pyq:2`` before ``pyq:10``."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", value))
