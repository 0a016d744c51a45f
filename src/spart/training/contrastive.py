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

The loop, data order, checkpoints and exports are :class:`spart.training.trainer.Trainer`'s (resume is exact:
the order is a function of ``(seed, step)``). Datasets with a ``set_epoch(epoch)`` method (SPIDER's
per-epoch sampling of spans) are told the epoch before it is read.

Deviations from SPIDER's ``train_dense_encoder.py`` (DPR code base): gradients are averaged explicitly rather
than by DDP (see :mod:`spart.training.distributed`); DPR gathers other ranks' embeddings *without* gradient,
we gather with gradient (the full-batch gradient, identical to one process); duplicate positives in a batch
are masked instead of being counted as negatives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from spart.encoders import SPIDER_DEFAULTS, DualEncoder
from spart.training.config import ContrastiveTrainingConfig
from spart.training.distributed import (
    DistributedContext,
    all_gather_with_grad,
    average_gradients,
    gathered_offset,
    guarded,
)
from spart.training.grad_cache import grad_cache_step, split_inputs
from spart.training.losses import InBatchContrastiveLoss
from spart.training.trainer import Trainer

logger = logging.getLogger(__name__)



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


# ---------------------------------------------------------------------- model
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
    encoder = DualEncoder.load(
        config.model, config.passage_model, defaults=SPIDER_DEFAULTS, device=device, precision="fp32", **overrides
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
class ContrastiveTrainer(Trainer):
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

    metrics_fields = ("step", "epoch", "loss", "lr", "examples_per_s", "elapsed_s")

    def __init__(
        self,
        config: ContrastiveTrainingConfig,
        encoder: DualEncoder,
        dataset: Any,
        ctx: DistributedContext | None = None,
        on_step_end: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(config, encoder, len(dataset), ctx, on_step_end, items="examples in the dataset")
        self.dataset = dataset
        self.loss_fn = InBatchContrastiveLoss(config.temperature)

    # ------------------------------------------------------------------ data
    def start_epoch(self, epoch: int) -> None:
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def local_examples(self, step: int) -> list[Any]:
        return [self.dataset[i] for i in self.local_indices(step)]

    # ------------------------------------------------------------------ one step
    def _candidate_mask(self, batch: Batch, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
        local_ids = [p.id for p in batch.passages]
        if self.ctx.enabled:
            gathered: list = [None] * self.ctx.world_size
            guarded("gather passage ids", dist.all_gather_object, gathered, local_ids)
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
        offset = guarded("gather batch sizes", gathered_offset, len(batch.passages))
        target, mask = self._candidate_mask(batch, offset)

        def loss_of(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
            return self.loss_fn(q, all_gather_with_grad(p), target, mask)

        chunk = self.config.grad_cache_chunk
        if chunk is None:
            with self.autocast():
                q, p = enc(q_inputs, p_inputs)
            loss = loss_of(q, p)
            self.scale(loss).backward()
            return loss.detach()

        def encoder_for(role: str):
            def encode(inputs):
                with self.autocast():
                    return enc.embed(inputs, role)

            return encode

        return grad_cache_step(
            [(encoder_for("query"), split_inputs(q_inputs, chunk)), (encoder_for("passage"), split_inputs(p_inputs, chunk))],
            loss_of,
            loss_scale=self.scaler.scale if self.scaler is not None else None,
        )

    def accumulate_gradients(self, step: int) -> torch.Tensor:
        """Forward/backward of global step ``step`` (0-based) on this rank's share, then average ``.grad`` over
        ranks: afterwards every rank holds the gradient of the global-batch loss. Returns the local loss."""
        self.encoder.train()
        batch = Batch.from_examples(self.local_examples(step))
        loss = self.compute_loss_and_backward(batch)
        guarded("average gradients", average_gradients, self.trainable_parameters(), self.ctx.world_size)
        return loss

    def train_step(self, step: int) -> dict[str, float]:
        """Run global step ``step`` (0-based); returns the loss averaged over ranks."""
        loss = self.accumulate_gradients(step)
        self.optimizer_step()
        return {"loss": self.mean_over_ranks(float(loss))}

    def metrics(self, window: dict[str, float], steps: int, seconds: float) -> dict[str, Any]:
        return {"examples_per_s": steps * self.config.batch_size / max(seconds, 1e-9)}

    def summary(self, row) -> str:
        return f"{super().summary(row)} {row['examples_per_s']:.1f} examples/s"


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
    from spart.training.distributed import (
        cleanup_distributed,
        init_distributed,
        setup_logging,
    )

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
