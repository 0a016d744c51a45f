"""The contrastive trainer: SPIDER pre-training and few-shot fine-tuning with one loop and one loss.

Each training example is ``{"query": str, "positive": passage, "negative": passage or None}`` where a passage
is anything :func:`spart.data.as_passage` reads (a :class:`spart.data.Passage`, an ``(id, title, text)`` tuple,
a mapping with those keys...) and has an id. Optional
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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from spart.data.passages import Passage, as_passage
from spart.encoders import DualEncoder
from spart.training.config import ContrastiveTrainingConfig
from spart.training.distributed import (
    DistributedContext,
    all_gather_with_grad,
    average_gradients,
    gather_objects,
    gathered_offset,
    guarded,
)
from spart.training.grad_cache import grad_cache_step, split_inputs
from spart.training.losses import InBatchContrastiveLoss
from spart.training.trainer import Trainer


# ---------------------------------------------------------------------- examples
@dataclass(frozen=True)
class Batch:
    """One rank's share of a step, with the passage ids needed to mask in-batch duplicates."""

    queries: list[str]
    passages: list[Passage]  # the b positives first, then the hard negatives that exist
    positive_ids: list[frozenset[str]]

    @classmethod
    def from_examples(cls, examples: Sequence[Mapping[str, Any]]) -> Batch:
        queries, positives, negatives, relevant = [], [], [], []
        for i, example in enumerate(examples):
            query = example.get("query")
            if not isinstance(query, str) or not query.strip():
                raise ValueError(f"example {i} has an empty query: {query!r}")
            positive = _passage(example.get("positive"), f"example {i} positive")
            queries.append(query)
            positives.append(positive)
            if example.get("negative") is not None:
                negatives.append(_passage(example["negative"], f"example {i} negative"))
            ids = set(example.get("positive_ids") or ())
            ids.add(positive.id)
            relevant.append(frozenset(ids))
        return cls(queries, positives + negatives, relevant)


def _passage(value: Any, what: str) -> Passage:
    passage = as_passage(value, what)
    if not passage.id:
        raise ValueError(f"{what} has no id (ids tell in-batch duplicates apart)")
    return passage


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

        trainer = ContrastiveTrainer(config, spider_encoder(config, ctx.device), dataset, ctx)
        trainer.train(resume=True)      # -> config.output_dir / "final"

    (``spider_encoder`` is in :mod:`spart.training.models`, the datasets in :mod:`spart.training.datasets`.)
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
        gathered = gather_objects("gather passage ids", [p.id for p in batch.passages])
        all_ids = [pid for ids in gathered for pid in ids]
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

        return grad_cache_step(
            [
                (self.embed_fn("query"), split_inputs(q_inputs, chunk)),
                (self.embed_fn("passage"), split_inputs(p_inputs, chunk)),
            ],
            loss_of,
            loss_scale=self.scale,
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
