"""ART's data: the training questions and the evidence corpus, with a live index sharded across ranks.

The evidence passages (ids, titles, texts) are held by every rank, because any rank may retrieve any passage
and must re-encode it with gradient; their *embeddings* are sharded: rank ``r`` of ``W`` owns the contiguous
rows ``np.array_split(range(N), W)[r]``, embeds them with the current passage tower at every re-index, and
searches them. A global top-K is then one exchange: every rank gathers all ranks' query embeddings, searches
its shard for all of them, the per-shard results are gathered and merged with :func:`spart.index.merge_topk`
(ties broken by the smaller row id, as :class:`DenseIndex` does), and each rank keeps its own queries' rows.
This is ART's distributed brute-force MIPS (``DistributedBruteForceIndex``) with FAISS per shard.

Every collective here is bounded by the process group's timeout. A failure (a rank that died, or one that
stopped answering) is re-raised as :class:`~spart.training.distributed.CollectiveError` naming the operation,
rather than leaving the job hanging the way ART's 30-minute NCCL hang does (DevSinghSachan/art issue #10).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from spart.index.dense import DenseIndex, merge_topk
from spart.training.distributed import guarded, rank_and_world

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------- inputs
def load_questions(path: str | Path, limit: int | None = None) -> list[str]:
    """Questions from a plain text, DPR QA or BEIR queries file (see ``spart.data.read_questions``).

    :raises ValueError: the file holds no question.
    """
    from spart.data import read_questions

    questions = []
    for question in read_questions(path):
        questions.append(question)
        if limit is not None and len(questions) >= limit:
            break
    if not questions:
        raise ValueError(f"{path}: no questions found")
    return questions


@dataclass(frozen=True)
class Evidence:
    """The evidence corpus as three parallel lists; row ``i`` is passage ``i`` (the index's id)."""

    ids: list[str]
    titles: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_passages(cls, passages) -> Evidence:
        ids, titles, texts = [], [], []
        for passage in passages:
            ids.append(passage.id)
            titles.append(passage.title or "")
            texts.append(passage.text)
        if not ids:
            raise ValueError("the evidence corpus is empty")
        return cls(ids, titles, texts)

    @classmethod
    def read(cls, path: str | Path, limit: int | None = None) -> Evidence:
        """Read a DPR TSV or BEIR corpus; ``limit`` keeps the first passages (for small runs)."""
        from itertools import islice

        from spart.data import read_passages

        return cls.from_passages(islice(read_passages(path), limit))


@dataclass(frozen=True)
class ARTData:
    """What ART trains on: the questions (the same list on every rank) and the evidence to retrieve from."""

    questions: list[str]
    evidence: Evidence

    def __len__(self) -> int:
        return len(self.questions)


# ---------------------------------------------------------------------- the sharded index
def shard_rows(n: int, rank: int, world: int) -> np.ndarray:
    """Global row ids of ``rank``'s shard: contiguous, sizes differ by at most one."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside a world of {world}")
    return np.array_split(np.arange(n, dtype=np.int64), world)[rank]


def _all_gather_rows(tensor: torch.Tensor, operation: str) -> list[torch.Tensor]:
    """Every rank's ``tensor`` (row counts may differ), in rank order; no gradient."""
    rank, world = rank_and_world()
    if world == 1:
        return [tensor]
    size = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    guarded(operation, dist.all_gather, sizes, size)
    counts = [int(s.item()) for s in sizes]
    padded = tensor.new_zeros((max(counts), *tensor.shape[1:]))
    padded[: tensor.shape[0]] = tensor
    gathered = [torch.empty_like(padded) for _ in range(world)]
    guarded(operation, dist.all_gather, gathered, padded.contiguous())
    return [g[:c] for g, c in zip(gathered, counts)]


class ShardedEvidenceIndex:
    """This rank's shard of the evidence embeddings, searchable as if it were the whole corpus.

    Usage::

        index = ShardedEvidenceIndex(len(evidence), dim=384)
        index.rebuild(encoder, evidence, step=0)        # each rank embeds its shard
        scores, rows = index.search(query_embeddings, k=32)   # global top-k of this rank's queries

    :param n_passages: size of the whole corpus.
    :param dim: embedding dimension.
    :param factory: FAISS factory of the per-shard index (``Flat`` = exact, as in ART).
    :param device: where exchanged tensors live (CUDA for NCCL).
    """

    def __init__(self, n_passages: int, dim: int, factory: str = "Flat", device: torch.device | None = None):
        if n_passages <= 0:
            raise ValueError(f"n_passages must be positive, got {n_passages}")
        self.rank, self.world = rank_and_world()
        self.n_passages = n_passages
        self.dim = dim
        self.factory = factory
        self.device = device or torch.device("cpu")
        self.rows = shard_rows(n_passages, self.rank, self.world)
        self.embeddings: np.ndarray | None = None
        self.step: int | None = None  # training step whose passage tower produced the embeddings
        self._index: DenseIndex | None = None

    def set_embeddings(self, embeddings: np.ndarray, step: int) -> None:
        """Install this shard's embeddings (rows aligned with :attr:`rows`), e.g. from a checkpoint."""
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(self.rows), self.dim):
            raise ValueError(
                f"rank {self.rank}: shard embeddings must be ({len(self.rows)}, {self.dim}), got {embeddings.shape}"
            )
        index = DenseIndex(self.dim, self.factory)
        if len(self.rows):
            index.add(embeddings, ids=self.rows)
        self.embeddings, self.step, self._index = embeddings, int(step), index

    def rebuild(self, encoder, evidence: Evidence, step: int, batch_size: int = 64, progress: bool = False) -> float:
        """Embed this shard with ``encoder``'s current passage tower (no grad) and re-index it.

        :returns: seconds spent.
        """
        if len(evidence) != self.n_passages:
            raise ValueError(f"evidence has {len(evidence)} passages, the index expects {self.n_passages}")
        start = time.perf_counter()
        rows = self.rows.tolist()
        if rows:
            embeddings = encoder.encode_passages(
                [evidence.texts[i] for i in rows],
                [evidence.titles[i] for i in rows],
                batch_size=batch_size,
                show_progress=progress,
            )
        else:
            embeddings = np.zeros((0, self.dim), dtype=np.float32)
        self.set_embeddings(embeddings, step)
        return time.perf_counter() - start

    def search(self, queries: np.ndarray | torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Global top-``k`` over every rank's shard for this rank's ``queries``.

        Collective: every rank must call it at the same point (with its own queries, possibly none).

        :returns: ``(scores, rows)`` of shape ``(n_queries, k)``; ``rows`` are global evidence rows, ``-1`` where
            the corpus has fewer than ``k`` passages.
        """
        if self._index is None:
            raise RuntimeError("the evidence index is empty: call rebuild() or set_embeddings() first")
        q = torch.as_tensor(np.asarray(queries, dtype=np.float32) if not torch.is_tensor(queries) else queries)
        q = q.detach().to(torch.float32)
        if q.dim() != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be (n, {self.dim}), got {tuple(q.shape)}")
        if self.world == 1:
            return self._index.search(q.cpu().numpy(), k)
        every = _all_gather_rows(q.to(self.device), "gather query embeddings")
        offset = sum(len(x) for x in every[: self.rank])
        all_q = torch.cat(every).cpu().numpy()
        scores, rows = self._index.search(all_q, k)
        all_scores = _all_gather_rows(torch.from_numpy(scores).to(self.device), "gather shard scores")
        all_rows = _all_gather_rows(torch.from_numpy(rows).to(self.device), "gather shard ids")
        merged_scores, merged_rows = merge_topk(
            [s.cpu().numpy() for s in all_scores], [r.cpu().numpy() for r in all_rows], k
        )
        return merged_scores[offset : offset + len(q)], merged_rows[offset : offset + len(q)]

    def lookup(self, rows: np.ndarray) -> np.ndarray:
        """The embeddings of global evidence ``rows`` (any shape), wherever their shard lives. Collective.

        :returns: float32 array of shape ``rows.shape + (dim,)``.
        """
        if self.embeddings is None:
            raise RuntimeError("the evidence index is empty: call rebuild() or set_embeddings() first")
        rows = np.asarray(rows, dtype=np.int64)
        flat = rows.reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= self.n_passages):
            raise ValueError(f"evidence rows must lie in [0, {self.n_passages}), got {flat.min()}..{flat.max()}")
        if self.world == 1:
            return self.embeddings[flat].reshape(*rows.shape, self.dim)
        # Every rank's rows; each rank fills those of its shard (contiguous) and a sum of one non-zero term per
        # entry (exact) gives everyone every embedding.
        every = _all_gather_rows(torch.from_numpy(flat).to(self.device), "gather evidence rows")
        offset = sum(len(x) for x in every[: self.rank])
        all_rows = torch.cat(every).cpu().numpy()
        start = int(self.rows[0]) if len(self.rows) else 0
        mine = (all_rows >= start) & (all_rows < start + len(self.rows))
        out = np.zeros((len(all_rows), self.dim), dtype=np.float32)
        out[mine] = self.embeddings[all_rows[mine] - start]
        summed = torch.from_numpy(out).to(self.device)
        guarded("sum evidence embeddings", dist.all_reduce, summed)
        return summed.cpu().numpy()[offset : offset + flat.size].reshape(*rows.shape, self.dim)

    def gather_embeddings(self) -> np.ndarray | None:
        """The whole corpus's embeddings on rank 0 (``None`` elsewhere), for a checkpoint. Collective."""
        if self.embeddings is None:
            raise RuntimeError("the evidence index is empty")
        if self.world == 1:
            return self.embeddings
        shards = _all_gather_rows(torch.from_numpy(self.embeddings).to(self.device), "gather evidence embeddings")
        return torch.cat(shards).cpu().numpy() if self.rank == 0 else None

    def shard_of(self, full: np.ndarray) -> np.ndarray:
        """This rank's rows of a full ``(N, dim)`` embedding matrix (from a checkpoint)."""
        if full.shape != (self.n_passages, self.dim):
            raise ValueError(f"evidence embeddings must be ({self.n_passages}, {self.dim}), got {full.shape}")
        return full[self.rows]


def check_topk_rows(rows: np.ndarray, k: int) -> None:
    """A retrieval must find ``k`` passages for every question (the KL is over exactly K candidates)."""
    if (rows < 0).any():
        raise ValueError(f"the evidence corpus has fewer than top_k={k} passages; lower top_k")


def gather_passages(evidence: Evidence, rows: Sequence[Sequence[int]]) -> tuple[list[str], list[str], list[str]]:
    """Flattened ``(ids, titles, texts)`` of the retrieved rows, question by question."""
    flat = [int(r) for row in rows for r in row]
    return [evidence.ids[i] for i in flat], [evidence.titles[i] for i in flat], [evidence.texts[i] for i in flat]
