"""A second bi-encoder as the teacher: its inner product of each question with each of the question's candidates.

ART's teacher is a frozen LM's question likelihood. A frozen *encoder* that ranks the user's corpus better than
the student (typically a larger one the user cannot afford to serve, e.g. all-mpnet-base-v2 over
all-MiniLM-L6-v2) gives a target in the same shape, ``(B, K)`` scores over the student's own top ``K``, at a
fraction of the cost: one forward pass per distinct question and per distinct passage instead of one per pair,
and no generation. That is knowledge distillation from a bigger bi-encoder on the user's corpus (GPL distils a
cross-encoder in the same place); **not in ART**, whose teacher is always an LM. It fits ART's loss unchanged: the
softmax over the K scores is the target (``teacher_temperature: auto`` matches its sharpness to the student's).

The same scorer is the base retriever's score of :class:`~spart.teacher.mixing.BaseInterpolatedTeacher` and the
score of :class:`~spart.components.rankers.EncoderRanker`: one piece for "score candidates with a frozen encoder".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spart.data.passages import Passage, as_passage
from spart.validation import check_positive_int

# Files that make a directory an encoder (sentence-transformers or spart's saved format), not a language model.
ENCODER_MARKERS = ("modules.json", "sentence_bert_config.json", "spart.json")


def is_encoder_model(location: str | Path | None) -> bool:
    """Whether ``location`` is a sentence-transformers or spart encoder directory (so a teacher named by it scores
    with embeddings, not question likelihood). ``None`` (the packaged SmolLM2), files and hub ids are LMs."""
    if location is None:
        return False
    path = Path(location).expanduser()
    return path.is_dir() and any((path / marker).is_file() for marker in ENCODER_MARKERS)


def _passage_key(p: Passage) -> str:
    """A passage's cache key: its id, or a digest of title and text for a passage without one."""
    if p.id:
        return "id:" + p.id
    return "text:" + hashlib.sha256(f"{p.title}\x00{p.text}".encode()).hexdigest()


class EncoderScorer:
    """Scores ``question . passage`` under a frozen :class:`~spart.encoders.DualEncoder`, embeddings cached.

    Question embeddings are cached by text and passage embeddings by id (by title and text for a passage without
    an id), so ART's repeated candidates and a ranker's repeated documents are embedded once. The cache holds at
    most every distinct passage scored: ART's training questions times ``top_k``, or the evidence, whichever is
    smaller.

    :param model: the encoder's directory (sentence-transformers or spart) or hub id.
    :param device: ``"cpu"``, ``"cuda"``, ... (``"auto"``: CUDA when available).
    :param precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (see :meth:`DualEncoder.load`).
    :param batch_size: texts per encoder forward pass.

    Usage::

        scorer = EncoderScorer("models/all-mpnet-base-v2")
        scorer.warm_up()
        scorer.score("what is a tuple?", [{"id": "a", "text": "Tuples are immutable sequences."}])  # (1,)
        scorer.score_topk(questions, topk_passages)                                                # (B, K)
    """

    def __init__(self, model: str | Path, device: str = "auto", precision: str = "auto", batch_size: int = 64) -> None:
        check_positive_int(batch_size, "batch_size")
        self.model_name = str(model)
        self.device, self.precision, self.batch_size = device, precision, batch_size
        self.encoder: Any = None
        self.stats = {"pairs": 0, "questions_embedded": 0, "passages_embedded": 0}
        self._queries: dict[str, np.ndarray] = {}
        self._passages: dict[str, np.ndarray] = {}

    @classmethod
    def from_encoder(cls, encoder: Any, batch_size: int = 64) -> EncoderScorer:
        """A scorer around an already loaded encoder (eval mode; it is used as it is)."""
        scorer = cls("<loaded>", batch_size=batch_size)
        scorer.encoder = encoder
        return scorer

    def warm_up(self) -> None:
        """Load the encoder (once)."""
        if self.encoder is not None:
            return
        from spart.encoders import DualEncoder

        self.encoder = DualEncoder.load(self.model_name, device=self.device, precision=self.precision)

    @property
    def fingerprint(self) -> str | None:
        """Identifies the encoder's weights and settings (``None`` before :meth:`warm_up`)."""
        return None if self.encoder is None else f"encoder:{self.encoder.fingerprint}"

    def score_topk(self, questions: Sequence[str], passages: Sequence[Sequence[Any]]) -> np.ndarray:
        """``(B, K)`` inner products of each question with each of its own K passages (any shape
        :func:`spart.data.as_passage` reads), float32.

        :raises ValueError: when the lists differ in length or the rows in width.
        """
        if len(questions) != len(passages):
            raise ValueError(f"{len(questions)} questions but {len(passages)} passage lists")
        rows = [[as_passage(p) for p in row] for row in passages]
        widths = {len(row) for row in rows}
        if len(widths) > 1:
            raise ValueError(f"every question needs the same number of passages, got {sorted(widths)}")
        if not rows or not rows[0]:
            return np.zeros((len(rows), 0), dtype=np.float32)
        self.warm_up()
        new_q = [q for q in dict.fromkeys(questions) if q not in self._queries]
        if new_q:
            for q, e in zip(new_q, self.encoder.encode_queries(new_q, batch_size=self.batch_size)):
                self._queries[q] = e
            self.stats["questions_embedded"] += len(new_q)
        keys = [[_passage_key(p) for p in row] for row in rows]
        new_p = {k: p for row, ks in zip(rows, keys) for p, k in zip(row, ks) if k not in self._passages}
        if new_p:
            items = list(new_p.items())
            embedded = self.encoder.encode_passages(
                [p.text for _, p in items], [p.title or "" for _, p in items], batch_size=self.batch_size
            )
            for (k, _), e in zip(items, embedded):
                self._passages[k] = e
            self.stats["passages_embedded"] += len(items)
        q = np.stack([self._queries[x] for x in questions])  # (B, d)
        p = np.stack([np.stack([self._passages[k] for k in ks]) for ks in keys])  # (B, K, d)
        self.stats["pairs"] += p.shape[0] * p.shape[1]
        return np.einsum("bd,bkd->bk", q, p).astype(np.float32)

    def score(self, question: str, passages: Sequence[Any]) -> np.ndarray:
        """``question``'s inner product with each passage; shape ``(len(passages),)``."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        return self.score_topk([question], [list(passages)])[0]
