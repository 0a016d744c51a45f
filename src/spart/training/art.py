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
- ``teacher_temperature`` (ART: 1, the default) is exposed because a small teacher's scores span less;
- passages are ``title [SEP] text`` with the DualEncoder's own tokenisation; questions have no source passage,
  so ART's "drop the trivial passage" step does not apply;
- the evidence embeddings are stored in float32 (ART: fp16), and gathered to rank 0 for checkpoints (fine for
  millions of passages per node of RAM, not for ART's 21M x 768 on one host).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from pydantic import Field

from spart.encoders import ART_DEFAULTS, DualEncoder
from spart.training.art_data import (
    Evidence,
    ShardedEvidenceIndex,
    check_topk_rows,
    epoch_order,
    gather_passages,
    guarded,
    load_questions,
    resolve_model_location,
)
from spart.training.checkpoint import Checkpointer, capture_rng_state, restore_rng_state
from spart.training.config import StrictModel, TrainingConfig, save_config
from spart.training.distributed import DistributedContext, average_gradients, broadcast_parameters
from spart.training.losses.kl_distillation_loss import KLDistillationLoss
from spart.encoders.precision import autocast, resolve_precision
from spart.training.metrics_log import MetricsLog, step_progress
from spart.training.schedule import build_adamw, linear_warmup_decay

logger = logging.getLogger(__name__)

NORMALIZED_TEMPERATURE = 0.05
METRICS_FIELDS = [
    "step", "epoch", "loss", "lr", "questions_per_s", "step_s", "teacher_s", "teacher_share", "retrieve_s",
    "reindex_s", "index_step", "teacher_cache_hit_rate", "elapsed_s",
]


# ---------------------------------------------------------------------- configuration
class TeacherConfig(StrictModel):
    """The frozen question-likelihood teacher (see :class:`spart.teacher.QuestionLikelihoodScorer`).

    :param model: HF directory, ``.gguf`` file or local hub id; ``None`` = the packaged SmolLM2-135M-Instruct.
    :param cache: SQLite score cache; default ``<output_dir>/teacher-scores.sqlite``. Scores are keyed by the
        teacher's fingerprint, so one file can be shared by runs and ranks.
    :param use_cache: set ``false`` to score every pair afresh.
    """

    model: str | None = None
    gguf_file: str | None = None
    model_kind: Literal["auto", "causal", "seq2seq"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    device: str | None = None
    batch_size: int = Field(16, gt=0)
    max_passage_tokens: int = Field(256, gt=0)
    max_question_tokens: int = Field(64, gt=0)
    use_chat_template: bool | None = None
    cache: Path | None = None
    use_cache: bool = True


class ARTTrainingConfig(TrainingConfig):
    """ART training options (on top of :class:`TrainingConfig`'s schedule, checkpointing and logging).

    :param model: initial encoder (MiniLM alias, spart/sentence-transformers/HF directory, a SPIDER model...).
    :param passage_model: optional separate starting point of the passage tower.
    :param shared: one tower for both sides; ART uses two (``false``).
    :param pooling / normalize: ``None`` keeps the model's own (sentence-transformers settings, spart.json, else
        ART's CLS without normalisation).
    :param questions: training questions (text lines, DPR QA csv/tsv, or BEIR queries.jsonl).
    :param evidence: the corpus to retrieve from (DPR TSV or BEIR corpus).
    :param max_questions / max_evidence: keep only the first N (small runs).
    :param top_k: retrieved passages per question (ART: 32).
    :param temperature: student temperature; ``None`` = sqrt(dim), or 0.05 for normalised embeddings.
    :param teacher_temperature: teacher scores are divided by it (ART: 1.0).
    :param reindex_every: re-embed the evidence every N steps (ART: 500); 0 never re-embeds.
    :param index_factory: FAISS factory of each shard (``Flat``: exact search, as ART).
    :param encode_batch_size: batch size of evidence re-embedding.
    :param export_steps: also save a loadable model at these steps (``models/step-N``), for learning curves.
    """

    grad_clip: float = Field(1.0, ge=0)
    model: str
    passage_model: str | None = None
    shared: bool = False
    pooling: Literal["cls", "mean"] | None = None
    normalize: bool | None = None
    query_max_length: int = Field(64, ge=4)
    passage_max_length: int = Field(240, ge=4)
    questions: Path
    evidence: Path
    max_questions: int | None = Field(None, gt=0)
    max_evidence: int | None = Field(None, gt=0)
    top_k: int = Field(32, gt=0)
    temperature: float | None = Field(None, gt=0)
    teacher_temperature: float = Field(1.0, gt=0)
    reindex_every: int = Field(500, ge=0)
    index_factory: str = "Flat"
    encode_batch_size: int = Field(64, gt=0)
    export_steps: list[int] = Field(default_factory=list)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)


class Teacher(Protocol):
    """What the trainer needs from a teacher: ``(B, K)`` scores of each question against its K passages."""

    def score_topk(self, questions: Sequence[str], passages: Sequence[Sequence[Any]]) -> np.ndarray: ...


# ---------------------------------------------------------------------- building blocks
def build_encoder(config: ARTTrainingConfig, device: torch.device, precision: str = "fp32") -> DualEncoder:
    """The encoder to train, loaded with ART's defaults (two towers, CLS) unless the model or config says
    otherwise. ``precision`` only affects the encoder's own inference (evidence re-embedding)."""
    if config.passage_model is not None and config.shared:
        raise ValueError("passage_model gives a separate passage tower; set shared: false")
    passage = resolve_model_location(config.passage_model) if config.passage_model else None
    return DualEncoder.load(
        resolve_model_location(config.model), passage, defaults=ART_DEFAULTS, device=device,
        precision=precision if precision in ("fp32", "bf16") else "fp32",
        shared=config.shared, pooling=config.pooling, normalize=config.normalize,
        query_max_length=config.query_max_length, passage_max_length=config.passage_max_length,
    )


def build_teacher(config: ARTTrainingConfig, device: torch.device):
    """The question-likelihood scorer named by ``config.teacher``, warmed up, with its score cache."""
    from spart.teacher import QuestionLikelihoodScorer, ScoreCache

    t = config.teacher
    cache = None
    if t.use_cache:
        cache = ScoreCache(t.cache or Path(config.output_dir) / "teacher-scores.sqlite")
    scorer = QuestionLikelihoodScorer(
        t.model, gguf_file=t.gguf_file, model_kind=t.model_kind, use_chat_template=t.use_chat_template,
        precision=t.precision, device=t.device or str(device), batch_size=t.batch_size,
        max_passage_tokens=t.max_passage_tokens, max_question_tokens=t.max_question_tokens, cache=cache,
    )
    scorer.warm_up()
    return scorer


def resolve_temperature(config: ARTTrainingConfig, encoder: DualEncoder) -> float:
    """The student temperature (see the module docstring)."""
    if config.temperature is not None:
        return float(config.temperature)
    if encoder.config.normalize:
        return NORMALIZED_TEMPERATURE
    return math.sqrt(encoder.embedding_dim)


# ---------------------------------------------------------------------- trainer
class ARTTrainer:
    """Trains a :class:`DualEncoder` by distilling a question-likelihood teacher; see the module docstring.

    :param config: the run's options.
    :param encoder: the model to train (fp32 weights; the step autocasts).
    :param questions: the training questions (the same list on every rank).
    :param evidence: the evidence corpus (the same on every rank).
    :param teacher: anything with ``score_topk(questions, passages) -> (B, K)``; passages are
        :class:`spart.teacher.TeacherPassage`.
    :param ctx: the distributed context (a world of one by default).
    :param on_step_end: called with the step number after each completed step (tests simulate crashes with it).

    Usage::

        trainer = ARTTrainer(config, build_encoder(config, ctx.device), questions, evidence, teacher, ctx)
        trainer.train(resume=True)      # -> config.output_dir / "final"
    """

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
        self.config = config
        self.encoder = encoder
        self.questions = list(questions)
        self.evidence = evidence
        self.teacher = teacher
        self.ctx = ctx or DistributedContext(device=encoder.device)
        self.on_step_end = on_step_end
        if config.batch_size % self.ctx.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by world size {self.ctx.world_size}")
        if len(self.questions) < config.batch_size:
            raise ValueError(f"{len(self.questions)} questions, fewer than one batch of {config.batch_size}")
        if config.top_k > len(evidence):
            raise ValueError(f"top_k={config.top_k} exceeds the {len(evidence)} evidence passages")
        self.local_batch = config.batch_size // self.ctx.world_size
        self.steps_per_epoch = len(self.questions) // config.batch_size
        self.temperature = resolve_temperature(config, encoder)
        self.loss_fn = KLDistillationLoss(config.teacher_temperature)
        self.precision = resolve_precision(self.config.precision, self.ctx.device)
        self.optimizer = build_adamw(encoder, config.lr, config.weight_decay, config.adam_betas, config.adam_eps)
        self.scheduler = linear_warmup_decay(self.optimizer, config.resolved_warmup_steps(), config.max_steps)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.checkpointer = Checkpointer(config.output_dir, keep=config.keep_checkpoints)
        self.index = ShardedEvidenceIndex(len(evidence), encoder.embedding_dim, config.index_factory, self.ctx.device)
        self.step = 0
        self.last_reindex_s = 0.0
        self._order: tuple[int, torch.Tensor] | None = None

    # ------------------------------------------------------------------ precision
    def autocast(self):
        return autocast(self.precision, self.ctx.device)

    # ------------------------------------------------------------------ data
    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, batch index within the epoch)`` of global step ``step`` (the last partial batch is dropped)."""
        return divmod(step, self.steps_per_epoch)

    def local_questions(self, step: int) -> list[str]:
        epoch, index = self.position(step)
        if self._order is None or self._order[0] != epoch:
            self._order = (epoch, epoch_order(len(self.questions), self.config.seed, epoch))
        start = index * self.config.batch_size + self.ctx.rank * self.local_batch
        return [self.questions[int(i)] for i in self._order[1][start : start + self.local_batch]]

    # ------------------------------------------------------------------ index
    def reindex(self, step: int) -> float:
        """Re-embed this rank's evidence shard with the current passage tower (collective via the barrier)."""
        seconds = self.index.rebuild(
            self.encoder, self.evidence, step, self.config.encode_batch_size,
            progress=self.config.progress and self.ctx.is_main,
        )
        self._barrier("re-index")
        self.last_reindex_s = seconds
        logger.info("evidence re-embedded at step %d (%d passages on this rank, %.1fs)", step, len(self.index.rows), seconds)
        return seconds

    def _barrier(self, operation: str) -> None:
        if self.ctx.enabled:
            import torch.distributed as dist

            guarded(operation, dist.barrier)

    # ------------------------------------------------------------------ one step
    def compute_loss_and_backward(self, questions: list[str]) -> tuple[torch.Tensor, dict[str, float]]:
        """Forward + backward of one rank's questions; returns the local loss and timings (seconds)."""
        enc, k, b = self.encoder, self.config.top_k, len(questions)
        with self.autocast():
            q = enc.embed(enc.tokenize_queries(questions), "query")
        t0 = time.perf_counter()
        _, rows = self.index.search(q.detach().float().cpu(), k)
        check_topk_rows(rows, k)
        retrieve_s = time.perf_counter() - t0

        ids, titles, texts = gather_passages(self.evidence, rows)
        t0 = time.perf_counter()
        teacher_scores = self._teacher_scores(questions, ids, titles, texts, b, k)
        teacher_s = time.perf_counter() - t0

        with self.autocast():
            p = enc.embed(enc.tokenize_passages(texts, titles), "passage")
        student = torch.einsum("bd,bkd->bk", q.float(), p.float().view(b, k, -1)) / self.temperature
        loss = self.loss_fn(student, teacher_scores.to(student.device))
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        return loss.detach(), {"retrieve_s": retrieve_s, "teacher_s": teacher_s}

    def _teacher_scores(self, questions, ids, titles, texts, b: int, k: int) -> torch.Tensor:
        from spart.teacher.passages import TeacherPassage

        passages = [TeacherPassage(i, t, x) for i, t, x in zip(ids, titles, texts)]
        scores = self.teacher.score_topk(questions, [passages[j * k : (j + 1) * k] for j in range(b)])
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (b, k) or not np.isfinite(scores).all():
            raise ValueError(f"the teacher returned scores of shape {scores.shape} (want {(b, k)}) or non-finite values")
        return torch.from_numpy(scores)

    def train_step(self, step: int) -> dict[str, float]:
        """Run global step ``step`` (0-based); returns the loss averaged over ranks and this rank's timings."""
        start = time.perf_counter()
        self.encoder.train()
        loss, timings = self.compute_loss_and_backward(self.local_questions(step))
        params = [p for p in self.encoder.parameters() if p.requires_grad]
        guarded("average gradients", average_gradients, params, self.ctx.world_size)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        mean_loss = float(loss)
        if self.ctx.enabled:
            import torch.distributed as dist

            t = torch.tensor([mean_loss], dtype=torch.float64, device=self.ctx.device)
            guarded("average loss", dist.all_reduce, t)
            mean_loss = float(t.item()) / self.ctx.world_size
        return {"loss": mean_loss, "step_s": time.perf_counter() - start, **timings}

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs. Collective (RNG states and evidence shards are gathered)."""
        rng = capture_rng_state()
        if self.ctx.enabled:
            import torch.distributed as dist

            every: list = [None] * self.ctx.world_size
            guarded("gather RNG states", dist.all_gather_object, every, rng)
        else:
            every = [rng]
        evidence = self.index.gather_embeddings()
        return {
            "model": self.encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": every,
            "world_size": self.ctx.world_size,
            "index_step": self.index.step,
            "evidence_embeddings": None if evidence is None else torch.from_numpy(np.array(evidence)),
            "evidence_ids_hash": _ids_hash(self.evidence.ids),
            "config": self.config.model_dump(mode="json"),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["world_size"] != self.ctx.world_size:
            raise ValueError(
                f"checkpoint was written by {state['world_size']} ranks, resuming with {self.ctx.world_size}: "
                "the data, RNG and index shards would not continue exactly"
            )
        if state["evidence_ids_hash"] != _ids_hash(self.evidence.ids):
            raise ValueError("the checkpoint's evidence corpus differs from the configured one")
        self.encoder.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        full = state["evidence_embeddings"].cpu().numpy()
        self.index.set_embeddings(self.index.shard_of(full), state["index_step"])
        restore_rng_state(state["rng"][self.ctx.rank])
        self.step = int(state["step"])

    def save_checkpoint(self) -> None:
        state = self.state_dict()
        if self.ctx.is_main:
            path = self.checkpointer.save(self.step, state)
            logger.info("checkpoint %s", path)
        self._barrier("checkpoint")

    def resume(self) -> bool:
        """Load the newest checkpoint of ``output_dir`` if there is one; returns whether it did."""
        path = self.checkpointer.latest_path()
        if path is None:
            return False
        self.load_state_dict(self.checkpointer.load(path, map_location="cpu"))
        logger.info("resumed from %s at step %d (index built at step %s)", path, self.step, self.index.step)
        return True

    # ------------------------------------------------------------------ the loop
    def train(self, resume: bool = False) -> Path:
        """Train to ``max_steps``; returns the directory of the final model (``output_dir/final``)."""
        config = self.config
        out = Path(config.output_dir)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        guarded("broadcast initial weights", broadcast_parameters, self.encoder)
        resumed = self.resume() if resume else False
        if self.ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(config, out / "config.yaml")
        if not resumed:
            self.reindex(0)
            # Different dropout streams per rank, reproducible from the seed (after the re-index, which draws none).
            torch.manual_seed(config.seed + 7919 * self.ctx.rank)
        metrics = MetricsLog(out / "metrics.csv", METRICS_FIELDS, self.step) if self.ctx.is_main else None
        if self.step == 0 and 0 in config.export_steps:
            self._export(0)
        progress = step_progress(config.max_steps, self.step, config.progress and self.ctx.is_main, desc="ART")
        window: dict[str, float] = {}
        window_steps, window_start, t0 = 0, time.perf_counter(), time.perf_counter()
        hits0 = _teacher_stats(self.teacher)
        try:
            while self.step < config.max_steps:
                result = self.train_step(self.step)
                if not math.isfinite(result["loss"]):
                    raise FloatingPointError(f"loss became {result['loss']} at step {self.step}")
                self.step += 1
                for key, value in result.items():
                    window[key] = window.get(key, 0.0) + value
                window_steps += 1
                progress.update(1)
                reindex_s = 0.0
                if config.reindex_every and self.step % config.reindex_every == 0 and self.step < config.max_steps:
                    reindex_s = self.reindex(self.step)
                    window["reindex_s"] = window.get("reindex_s", 0.0) + reindex_s
                if self.step % config.log_every == 0 or self.step == config.max_steps:
                    now = time.perf_counter()
                    hits1 = _teacher_stats(self.teacher)
                    pairs = hits1[0] - hits0[0]
                    row = {
                        "step": self.step,
                        "epoch": self.position(self.step - 1)[0],
                        "loss": window["loss"] / window_steps,
                        "lr": self.scheduler.get_last_lr()[0],
                        "questions_per_s": window_steps * config.batch_size / max(now - window_start, 1e-9),
                        "step_s": window["step_s"] / window_steps,
                        "teacher_s": window["teacher_s"] / window_steps,
                        "teacher_share": window["teacher_s"] / max(window["step_s"], 1e-9),
                        "retrieve_s": window["retrieve_s"] / window_steps,
                        "reindex_s": window.get("reindex_s", 0.0),
                        "index_step": self.index.step,
                        "teacher_cache_hit_rate": (hits1[1] - hits0[1]) / pairs if pairs else float("nan"),
                        "elapsed_s": now - t0,
                    }
                    progress.set_postfix(loss=f"{row['loss']:.4f}", teacher=f"{row['teacher_share']:.0%}")
                    if metrics is not None:
                        metrics.write(row)
                        logger.info(
                            "step %d loss %.4f lr %.3g %.2f q/s step %.2fs (teacher %.0f%%)", self.step, row["loss"],
                            row["lr"], row["questions_per_s"], row["step_s"], 100 * row["teacher_share"],
                        )
                    window, window_steps, window_start, hits0 = {}, 0, now, hits1
                if config.checkpoint_every and self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                if self.step in config.export_steps:
                    self._export(self.step)
                if self.on_step_end is not None:
                    self.on_step_end(self.step)
        finally:
            progress.close()
        if not config.checkpoint_every or self.step % config.checkpoint_every:
            self.save_checkpoint()
        final = out / "final"
        if self.ctx.is_main:
            self.encoder.eval()
            self.encoder.save(final)
            logger.info("final model saved to %s", final)
        self._barrier("final save")
        return final

    def _export(self, step: int) -> None:
        if self.ctx.is_main:
            self.encoder.eval()
            self.encoder.save(Path(self.config.output_dir) / "models" / f"step-{step:08d}")
        self._barrier("export")


# ---------------------------------------------------------------------- helpers
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


# ---------------------------------------------------------------------- entry point (spart train art)
CONFIG_CLASS = ARTTrainingConfig


def run_training(config: ARTTrainingConfig, resume: bool = False) -> Path:
    """Train as ``config`` says, on this process's share of a torchrun job (or alone)."""
    from spart.training.distributed import cleanup_distributed, init_distributed, setup_logging

    ctx = init_distributed(config.device, timeout_s=config.dist_timeout_s)
    setup_logging(ctx)
    try:
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        questions = load_questions(config.questions, config.max_questions)
        evidence = Evidence.read(config.evidence, config.max_evidence)
        logger.info("%d questions, %d evidence passages, %d steps of %d", len(questions), len(evidence),
                    config.max_steps, config.batch_size)
        # The encoder's own precision is used when it re-embeds the evidence (the training step autocasts).
        encoder_precision = resolve_precision("fp32" if config.precision == "fp16" else config.precision, ctx.device)
        encoder = build_encoder(config, ctx.device, encoder_precision)
        teacher = build_teacher(config, ctx.device)
        return ARTTrainer(config, encoder, questions, evidence, teacher, ctx).train(resume=resume)
    finally:
        cleanup_distributed()
