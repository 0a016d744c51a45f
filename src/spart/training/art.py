"""The ART trainer: a dense retriever trained from questions alone (Sachan et al. 2023, "Questions Are All You
Need to Train a Dense Passage Retriever").

One step, per rank (``b = batch_size / world_size`` questions):

1. embed the ``b`` questions with the current query tower (with gradient);
2. retrieve the global top-``K`` passages of each from the evidence index (precomputed passage embeddings,
   sharded across ranks, no gradient; see :mod:`spart.training.art_data`);
3. re-embed those ``b*K`` passages with the current passage tower (with gradient); the student is
   ``log_softmax(q . p / tau)`` over each question's K passages;
4. the frozen teacher LM scores ``mean_t log p(question_t | passage)`` for the same pairs (the
   :class:`~spart.teacher.QuestionLikelihoodScorer`, with its SQLite cache); the teacher distribution is
   ``log_softmax(scores / teacher_temperature)`` and the loss is ``KL(teacher || student)``, batch mean
   (:class:`~spart.training.losses.kl_distillation_loss.KLDistillationLoss`);
5. gradients are averaged over ranks, clipped (1.0), AdamW + linear warm-up/decay step;
6. every ``reindex_every`` steps the whole evidence is re-embedded with the current passage tower, each rank
   embedding its own shard.

With ``fixed_candidates`` (and ``reindex_every: 0``), step 2 is replaced: each question's K passages are its top K
under the initial model, searched once before the first step with the query tower in eval mode and kept in every
checkpoint. The student still scores those passages with its current towers.

With ``freeze_passage_tower`` (two towers, ``reindex_every: 0``), only the query tower trains: step 3 reads the K
passages' embeddings from the index (built once, before the first step, by the frozen passage tower) instead of
re-embedding them, and the gradient reaches the query tower alone.

Resuming is exact: the data order is a function of ``(seed, step)``; a checkpoint holds model, optimiser,
scheduler, every rank's RNG, *and the evidence embeddings in use with the step that produced them*, so the
resumed run retrieves exactly what the uninterrupted run retrieves (re-embedding with the resumed weights
would not: the index was built by an older passage tower).

Deviations from the reference (``DevSinghSachan/art``):

- teacher: the packaged SmolLM2-135M-Instruct (causal, GGUF) by default instead of T0-3B, with a score cache;
- student temperature: ART divides by ``sqrt(hidden_size)`` (``--retriever-score-scaling``); that is our default
  for unnormalised embeddings, but a model with L2-normalised outputs (e.g. all-MiniLM-L6-v2, which keeps its
  normalisation) gets ``tau = 0.05`` instead, because cosine scores / sqrt(384) would make the student almost
  uniform. ``temperature`` in the config overrides both;
- ``teacher_temperature`` (ART: 1, the default) is exposed because a small teacher's scores span less; ``auto``
  (not in ART) sets it, once before the first step, so that the teacher's distribution over the candidates of the
  first ``calibration_questions`` questions has the student's mean entropy at step 0. With temperature 1 a small
  teacher's mean log-likelihoods give a nearly uniform distribution over 40 candidates (Qwen2.5-Coder-0.5B on
  trivia: mean entropy 3.46 nats of at most 3.69) where the student (cosine / 0.05) is much sharper (1.86): the KL
  then teaches the student mostly to be less sure of its own ranking, not the teacher's order. Matching the two
  entropies leaves the order as the thing to learn. The value is kept in every checkpoint;
- passages are ``title [SEP] text`` with the DualEncoder's own tokenisation; questions have no source passage,
  so ART's "drop the trivial passage" step does not apply;
- the evidence embeddings are stored in float32 (ART: fp16), and gathered to rank 0 for checkpoints (fine for
  millions of passages per node of RAM, not for ART's 21M x 768 on one host);
- ``fixed_candidates`` (off by default) is not in ART. ART searches its (periodically refreshed) index with the
  current query tower; without a refresh (``reindex_every: 0``, the cheap schedule ``spart adapt`` uses) that
  tower drifts away from the passage embeddings it searches, its candidates change from step to step and most
  need new teacher scores. Fixed candidates are the base's own top K, the list a rerank of the base would read:
  the student learns the teacher's order of exactly those, and every teacher score after the first epoch comes
  from the cache;
- ``freeze_passage_tower`` (off by default) is not in ART, which trains both towers. With a frozen passage tower
  the static index is never stale, so ``reindex_every: 0`` costs nothing in faithfulness: the query tower searches
  the very embeddings it is scored against, a step skips the ``b*K`` passage forward and backward passes, and the
  adapted model embeds the corpus exactly as the initial one (passages the training never retrieved cannot move).
  The index embeddings are the encoder's inference-path output (eval mode, the run's encoding precision), where
  ART's re-embedding runs in training mode.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import torch

from spart.data.passages import Passage
from spart.encoders import DualEncoder
from spart.training.art_data import (
    ARTData,
    Evidence,
    ShardedEvidenceIndex,
    check_topk_rows,
    gather_passages,
)
from spart.training.config import ARTTrainingConfig
from spart.training.distributed import DistributedContext, average_gradients, gather_objects, guarded
from spart.training.grad_cache import grad_cache_step, split_inputs
from spart.training.losses.kl_distillation_loss import (
    KLDistillationLoss,
    entropy_matched_temperature,
    softmax_entropy,
)
from spart.training.trainer import Trainer, epoch_order

logger = logging.getLogger(__name__)

NORMALIZED_TEMPERATURE = 0.05


class Teacher(Protocol):
    """What the trainer needs from a teacher: ``(B, K)`` scores of each question against its K passages."""

    def score_topk(self, questions: Sequence[str], passages: Sequence[Sequence[Any]]) -> np.ndarray: ...


# ---------------------------------------------------------------------- building blocks
def resolve_temperature(config: ARTTrainingConfig, encoder: DualEncoder) -> float:
    """The student temperature (see the module docstring)."""
    if config.temperature is not None:
        return float(config.temperature)
    if encoder.config.normalize:
        return NORMALIZED_TEMPERATURE
    return math.sqrt(encoder.embedding_dim)


# ---------------------------------------------------------------------- trainer
class ARTTrainer(Trainer):
    """Trains a :class:`DualEncoder` by distilling a question-likelihood teacher; see the module docstring.

    :param config: the run's options.
    :param encoder: the model to train (fp32 weights; the step autocasts).
    :param questions: the training questions (the same list on every rank).
    :param evidence: the evidence corpus (the same on every rank).
    :param teacher: anything with ``score_topk(questions, passages) -> (B, K)``; passages are
        :class:`spart.data.Passage`.
    :param ctx: the distributed context (a world of one by default).
    :param on_step_end: called with the step number after each completed step (tests simulate crashes with it).

    Usage::

        trainer = ARTTrainer(config, art_encoder(config, ctx.device), questions, evidence, teacher, ctx)
        trainer.train(resume=True)      # -> config.output_dir / "final"

    (:mod:`spart.training.models` has ``art_encoder`` and ``build_teacher``; ``spart train art`` goes through
    :meth:`build`.)
    """

    metrics_fields = (
        "step",
        "epoch",
        "loss",
        "lr",
        "questions_per_s",
        "step_s",
        "teacher_s",
        "teacher_share",
        "retrieve_s",
        "reindex_s",
        "index_step",
        "teacher_cache_hit_rate",
        "elapsed_s",
    )
    progress_desc = "ART"
    resume_note = "the data, RNG and index shards would not continue exactly"

    def __init__(
        self,
        config: ARTTrainingConfig,
        encoder: DualEncoder,
        questions: Sequence[str],
        evidence: Evidence,
        teacher: Teacher,
        ctx: DistributedContext | None = None,
        on_step_end: Callable[[int], None] | None = None,
    ) -> None:
        if config.freeze_passage_tower:
            if encoder.config.shared:
                raise ValueError("freeze_passage_tower needs an encoder with separate towers (shared: false)")
            # before the optimiser is built (over the parameters that require a gradient)
            encoder.tower("passage").requires_grad_(False)
        super().__init__(config, encoder, len(questions), ctx, on_step_end, items="questions")
        if config.top_k > len(evidence):
            raise ValueError(f"top_k={config.top_k} exceeds the {len(evidence)} evidence passages")
        self.questions = list(questions)
        self.evidence = evidence
        self.teacher = teacher
        self.temperature = resolve_temperature(config, encoder)
        self.auto_teacher_temperature = config.teacher_temperature == "auto"
        # "auto": resolved before the first step (calibrate_teacher_temperature) or from the checkpoint
        self.loss_fn = KLDistillationLoss(1.0 if self.auto_teacher_temperature else config.teacher_temperature)
        self.index = ShardedEvidenceIndex(len(evidence), encoder.embedding_dim, config.index_factory, self.ctx.device)
        self.candidates: np.ndarray | None = None  # (n_questions, K) evidence rows with fixed_candidates
        self._teacher_stats_at_window_start = _teacher_stats(teacher)

    @classmethod
    def build(
        cls, config: ARTTrainingConfig, encoder: DualEncoder, dataset: ARTData, ctx: DistributedContext
    ) -> ARTTrainer:
        """The trainer of a ``spart train art`` run: ``dataset`` from the registry's factory, the teacher from
        ``config.teacher``."""
        from spart.training.models import build_teacher

        logger.info("%d evidence passages", len(dataset.evidence))
        return cls(config, encoder, dataset.questions, dataset.evidence, build_teacher(config, ctx.device), ctx)

    # ------------------------------------------------------------------ data
    def local_questions(self, step: int) -> list[str]:
        return [self.questions[i] for i in self.local_indices(step)]

    # ------------------------------------------------------------------ index
    def reindex(self, step: int) -> float:
        """Re-embed this rank's evidence shard with the current passage tower (collective via the barrier)."""
        seconds = self.index.rebuild(
            self.encoder,
            self.evidence,
            step,
            self.config.encode_batch_size,
            progress=self.config.progress and self.ctx.is_main,
        )
        self.barrier("re-index")
        logger.info(
            "evidence re-embedded at step %d (%d passages on this rank, %.1fs)", step, len(self.index.rows), seconds
        )
        return seconds

    def before_training(self, resumed: bool) -> None:
        if not resumed:
            self.reindex(0)
            if self.config.fixed_candidates:
                self.candidates = self.initial_candidates()
            if self.auto_teacher_temperature:
                self.loss_fn = KLDistillationLoss(self.calibrate_teacher_temperature())

    def initial_candidates(self) -> np.ndarray:
        """Every question's top K under the current (initial) model: ``(n_questions, K)`` evidence rows.

        The questions go through the encoder's own inference path (eval mode), as the evidence does in
        :meth:`reindex`. Collective: every rank searches the index with all questions."""
        k = self.config.top_k
        q = self.encoder.encode_queries(self.questions, batch_size=self.config.encode_batch_size)
        _, rows = self.index.search(q, k)
        check_topk_rows(rows, k)
        logger.info("fixed candidates: the initial model's top %d of %d questions", k, len(self.questions))
        return rows.astype(np.int64)

    def calibrate_teacher_temperature(self) -> float:
        """``teacher_temperature: auto``: the temperature at which the teacher's distribution over the candidates
        of the first ``calibration_questions`` questions of the data order is, on average, exactly as confident
        (the same mean entropy) as the student's at step 0.

        The candidates are those of step 0 (the fixed candidates, or the initial model's top K); the student scores
        them with its inference path (eval mode, the index embeddings); the teacher's scores go through its cache,
        so the first steps reuse them. Collective: every rank searches and looks up all calibration questions,
        the teacher's work is split between ranks and gathered, and every rank solves for the same temperature."""
        cfg, k = self.config, self.config.top_k
        n = min(cfg.calibration_questions, len(self.questions))
        order = [int(i) for i in epoch_order(len(self.questions), cfg.seed, 0)[:n]]
        questions = [self.questions[i] for i in order]
        q = self.encoder.encode_queries(questions, batch_size=cfg.encode_batch_size)
        if self.candidates is not None:
            rows = self.candidates[order]
        else:
            _, rows = self.index.search(q, k)
            check_topk_rows(rows, k)
        student = np.einsum("nd,nkd->nk", q.astype(np.float32), self.index.lookup(rows)) / self.temperature
        mine = list(range(self.ctx.rank, n, self.ctx.world_size))
        ids, titles, texts = gather_passages(self.evidence, rows[mine])
        local = (
            self._teacher_scores([questions[i] for i in mine], ids, titles, texts, len(mine), k).numpy()
            if mine
            else np.zeros((0, k), dtype=np.float32)
        )
        teacher = np.zeros((n, k), dtype=np.float64)
        for positions, scores in gather_objects("gather calibration scores", (mine, local)):
            teacher[positions] = scores
        target = float(softmax_entropy(student).mean())
        temperature = entropy_matched_temperature(teacher, target)
        logger.info(
            "teacher temperature auto: %.4g (student mean entropy %.3f nats over %d candidates of %d questions; "
            "the teacher's at temperature 1: %.3f; uniform: %.3f)",
            temperature,
            target,
            k,
            n,
            float(softmax_entropy(teacher).mean()),
            math.log(k),
        )
        reached = float(softmax_entropy(teacher / temperature).mean())
        if abs(reached - target) > 0.01:  # e.g. ties at the top of the teacher's scores bound its entropy below
            logger.warning(
                "teacher temperature auto: no temperature gives the teacher the student's mean entropy (%.3f nats); "
                "%.4g gives %.3f",
                target,
                temperature,
                reached,
            )
        return temperature

    def after_step(self) -> dict[str, float]:
        every, step = self.config.reindex_every, self.step
        if every and step % every == 0 and step < self.config.max_steps:
            return {"reindex_s": self.reindex(step)}
        return {"reindex_s": 0.0}

    # ------------------------------------------------------------------ one step
    def compute_loss_and_backward(
        self, questions: list[str], rows: np.ndarray | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward + backward of one rank's questions; returns the local loss and timings (seconds).

        :param rows: the questions' K evidence rows (fixed candidates); ``None``: searched with the current tower."""
        enc, k, b = self.encoder, self.config.top_k, len(questions)
        with self.autocast():  # with its graph either way: b queries are cheap next to the b x k passages
            q = enc.embed(enc.tokenize_queries(questions), "query")
        t0 = time.perf_counter()
        if rows is None:
            _, rows = self.index.search(q.detach().float().cpu(), k)
            check_topk_rows(rows, k)
        retrieve_s = time.perf_counter() - t0

        ids, titles, texts = gather_passages(self.evidence, rows)
        t0 = time.perf_counter()
        teacher_scores = self._teacher_scores(questions, ids, titles, texts, b, k)
        teacher_s = time.perf_counter() - t0

        def loss_of(p: torch.Tensor) -> torch.Tensor:
            student = torch.einsum("bd,bkd->bk", q.float(), p.float().view(b, k, -1)) / self.temperature
            return self.loss_fn(student, teacher_scores.to(student.device))

        chunk = self.config.grad_cache_chunk
        if self.config.freeze_passage_tower:  # the index holds the (frozen) passage tower's embeddings
            loss = loss_of(torch.from_numpy(self.index.lookup(rows)).to(q.device))
            self.scale(loss).backward()
            return loss.detach(), {"retrieve_s": retrieve_s, "teacher_s": teacher_s}
        p_inputs = enc.tokenize_passages(texts, titles)
        if chunk is None:
            loss = loss_of(self.embed_fn("passage")(p_inputs))  # outside autocast: the scores and the KL in fp32
            self.scale(loss).backward()
            loss = loss.detach()
        else:  # GradCache over the passages only: the loss's backward reaches the queries through q's graph
            loss = grad_cache_step([(self.embed_fn("passage"), split_inputs(p_inputs, chunk))], loss_of, self.scale)
        return loss, {"retrieve_s": retrieve_s, "teacher_s": teacher_s}

    def _teacher_scores(self, questions, ids, titles, texts, b: int, k: int) -> torch.Tensor:
        passages = [Passage(id=i, text=x, title=t) for i, t, x in zip(ids, titles, texts)]
        scores = self.teacher.score_topk(questions, [passages[j * k : (j + 1) * k] for j in range(b)])
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (b, k) or not np.isfinite(scores).all():
            raise ValueError(
                f"the teacher returned scores of shape {scores.shape} (want {(b, k)}) or non-finite values"
            )
        return torch.from_numpy(scores)

    def train_step(self, step: int) -> dict[str, float]:
        """Run global step ``step`` (0-based); returns the loss averaged over ranks and this rank's timings."""
        start = time.perf_counter()
        self.encoder.train()
        indices = self.local_indices(step)
        rows = None if self.candidates is None else self.candidates[indices]
        loss, timings = self.compute_loss_and_backward([self.questions[i] for i in indices], rows)
        guarded("average gradients", average_gradients, self.trainable_parameters(), self.ctx.world_size)
        self.optimizer_step()
        return {"loss": self.mean_over_ranks(float(loss)), "step_s": time.perf_counter() - start, **timings}

    def metrics(self, window: dict[str, float], steps: int, seconds: float) -> dict[str, Any]:
        pairs0, hits0 = self._teacher_stats_at_window_start
        pairs1, hits1 = self._teacher_stats_at_window_start = _teacher_stats(self.teacher)
        return {
            "questions_per_s": steps * self.config.batch_size / max(seconds, 1e-9),
            "step_s": window["step_s"] / steps,
            "teacher_s": window["teacher_s"] / steps,
            "teacher_share": window["teacher_s"] / max(window["step_s"], 1e-9),
            "retrieve_s": window["retrieve_s"] / steps,
            "reindex_s": window["reindex_s"],
            "index_step": self.index.step,
            "teacher_cache_hit_rate": (hits1 - hits0) / (pairs1 - pairs0) if pairs1 > pairs0 else float("nan"),
        }

    def summary(self, row) -> str:
        return (
            f"{super().summary(row)} {row['questions_per_s']:.2f} q/s step {row['step_s']:.2f}s "
            f"(teacher {row['teacher_share']:.0%})"
        )

    # ------------------------------------------------------------------ state
    def extra_state(self) -> dict[str, Any]:
        """The evidence embeddings in use and the step whose passage tower made them (gathered on rank 0)."""
        evidence = self.index.gather_embeddings()
        return {
            "index_step": self.index.step,
            "evidence_embeddings": None if evidence is None else torch.from_numpy(np.array(evidence)),
            "evidence_ids_hash": _ids_hash(self.evidence.ids),
            "candidates": None if self.candidates is None else torch.from_numpy(self.candidates),
            "freeze_passage_tower": self.config.freeze_passage_tower,
            "teacher_temperature": self.loss_fn.teacher_temperature,
            "teacher_temperature_auto": self.auto_teacher_temperature,
        }

    def check_state(self, state: Mapping[str, Any]) -> None:
        super().check_state(state)
        if state["evidence_ids_hash"] != _ids_hash(self.evidence.ids):
            raise ValueError("the checkpoint's evidence corpus differs from the configured one")
        fixed = state.get("candidates") is not None
        _refuse_a_switch("fixed_candidates", fixed, self.config.fixed_candidates)
        # older checkpoints trained both towers
        _refuse_a_switch(
            "freeze_passage_tower", bool(state.get("freeze_passage_tower")), self.config.freeze_passage_tower
        )
        _refuse_a_switch(
            "teacher_temperature: auto", bool(state.get("teacher_temperature_auto")), self.auto_teacher_temperature
        )
        if fixed and tuple(state["candidates"].shape) != (len(self.questions), self.config.top_k):
            raise ValueError(
                f"the checkpoint's fixed candidates are {tuple(state['candidates'].shape)} rows, this run has "
                f"{len(self.questions)} questions and top_k {self.config.top_k}"
            )

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        full = state["evidence_embeddings"].cpu().numpy()
        self.index.set_embeddings(self.index.shard_of(full), state["index_step"])
        logger.info("evidence index restored as built at step %d", state["index_step"])
        if state.get("candidates") is not None:
            self.candidates = state["candidates"].cpu().numpy().astype(np.int64)
        if self.auto_teacher_temperature:  # the value calibrated before the run's first step
            self.loss_fn = KLDistillationLoss(float(state["teacher_temperature"]))
            logger.info("teacher temperature (auto, from the checkpoint): %.4g", self.loss_fn.teacher_temperature)


# ---------------------------------------------------------------------- helpers
def _refuse_a_switch(option: str, trained_with: bool, configured_with: bool) -> None:
    """A resume must keep the checkpoint's setting of an option that changes the steps to come."""
    if trained_with != configured_with:
        raise ValueError(
            f"the checkpoint was trained {'with' if trained_with else 'without'} {option} and this run is configured "
            f"{'with' if configured_with else 'without'}: the steps to come would differ; resume with the "
            "checkpoint's setting or start a new output_dir"
        )


def _ids_hash(ids: Sequence[str]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for pid in ids:
        digest.update(pid.encode())
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def _teacher_stats(teacher: Any) -> tuple[int, int]:
    stats = getattr(teacher, "stats", None) or {}
    return int(stats.get("pairs", 0)), int(stats.get("cache_hits", 0))
