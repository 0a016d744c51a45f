"""The training methods ``spart train`` knows: one row per method, naming its config class, dataset factory,
encoder factory and trainer class.

A run (:func:`run_training`) is the same for every method::

    dataset = dataset_factory(config)
    encoder = encoder_factory(config, device)
    trainer = trainer_class.build(config, encoder, dataset, ctx)
    trainer.train(resume)

``spider`` and ``few-shot`` share everything: the config's ``data.kind`` picks span examples or labelled
pairs. A new method is one more row in :data:`METHODS` (and, where it needs them, its own config class in
:mod:`spart.training.config` and factories in :mod:`spart.training.datasets` / :mod:`spart.training.models`).

The table names its pieces as ``"module:attribute"`` strings, so importing it (and ``spart --help``) loads
neither torch nor pydantic; the row's accessors (:meth:`TrainingMethod.config_class`...) import them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from spart.encoders import DualEncoder
    from spart.training.config import TrainingConfig
    from spart.training.trainer import Trainer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingMethod:
    """One row of the table; each piece is a ``"module:attribute"`` string.

    :param name: the ``spart train`` method name.
    :param summary: one line for ``spart train --help``.
    :param config: the :class:`~spart.training.config.TrainingConfig` subclass the YAML file is read into.
    :param dataset: ``(config) -> dataset`` (what the trainer trains on).
    :param encoder: ``(config, device) -> DualEncoder`` (the model to train).
    :param trainer: the :class:`~spart.training.trainer.Trainer` subclass; a run builds it with
        ``trainer.build(config, encoder, dataset, ctx)``.
    """

    name: str
    summary: str
    config: str
    dataset: str
    encoder: str
    trainer: str

    def config_class(self) -> type[TrainingConfig]:
        """The config class, imported."""
        return _load(self.config)

    def dataset_factory(self) -> Callable[[Any], Any]:
        """The dataset factory, imported."""
        return _load(self.dataset)

    def encoder_factory(self) -> Callable[[Any, torch.device], DualEncoder]:
        """The encoder factory, imported."""
        return _load(self.encoder)

    def trainer_class(self) -> type[Trainer]:
        """The trainer class, imported."""
        return _load(self.trainer)


_CONTRASTIVE = dict(
    config="spart.training.config:ContrastiveTrainingConfig",
    dataset="spart.training.datasets:contrastive_dataset",
    encoder="spart.training.models:spider_encoder",
    trainer="spart.training.contrastive:ContrastiveTrainer",
)

METHODS: dict[str, TrainingMethod] = {
    method.name: method
    for method in (
        TrainingMethod("spider", "SPIDER pre-training on recurring-span examples", **_CONTRASTIVE),
        TrainingMethod("few-shot", "fine-tuning on labelled pairs with BM25 hard negatives", **_CONTRASTIVE),
        TrainingMethod(
            "art",
            "ART: questions only, distilling a question-likelihood teacher",
            config="spart.training.config:ARTTrainingConfig",
            dataset="spart.training.datasets:art_dataset",
            encoder="spart.training.models:art_encoder",
            trainer="spart.training.art:ARTTrainer",
        ),
    )
}


def get_method(name: str) -> TrainingMethod:
    """The row of ``name``.

    :raises ValueError: for a name that is not in the table (the message lists the known ones).
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown training method {name!r} (known: {', '.join(METHODS)})") from None


def run_training(method: str | TrainingMethod, config: TrainingConfig, resume: bool = False) -> Path:
    """Train as ``config`` says, on this process's share of a torchrun job (or alone).

    :param method: a method name or row.
    :param config: an instance of the method's config class.
    :param resume: continue from the newest checkpoint in ``config.output_dir``.
    :returns: the directory of the final model.
    :raises ValueError: ``config`` is not of the method's config class.
    """
    import torch

    from spart.training.distributed import cleanup_distributed, init_distributed, setup_logging

    row = get_method(method) if isinstance(method, str) else method
    config_class = row.config_class()
    if not isinstance(config, config_class):
        raise ValueError(f"{row.name} trains from a {config_class.__name__}, got {type(config).__name__}")
    ctx = init_distributed(config.device, timeout_s=config.dist_timeout_s)
    setup_logging(ctx)
    try:
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        dataset = row.dataset_factory()(config)
        logger.info(
            "%s: %d training items, %d steps of %d", row.name, len(dataset), config.max_steps, config.batch_size
        )
        encoder = row.encoder_factory()(config, ctx.device)
        return row.trainer_class().build(config, encoder, dataset, ctx).train(resume=resume)
    finally:
        cleanup_distributed()


def _load(target: str) -> Any:
    module, _, attribute = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except AttributeError:
        raise ImportError(f"{module} has no attribute {attribute!r} (training registry entry {target!r})") from None
