"""Training: SPIDER span mining and examples, the contrastive trainer (SPIDER pre-training and few-shot
fine-tuning), the ART trainer, and the pieces every trainer shares.

- :mod:`spart.training.registry`     the methods ``spart train`` knows (config, dataset, encoder, trainer)
- :mod:`spart.training.config`       every trainer's pydantic config, from YAML + ``key=value`` overrides
- :mod:`spart.training.datasets`     the dataset factories; :mod:`spart.training.models` the encoder (and
  ART's teacher) factories
- :mod:`spart.training.trainer`      the loop every trainer shares; :mod:`spart.training.contrastive` and
  :mod:`spart.training.art` hold the trainers
- :mod:`spart.training.spans`        recurring-span mining; :mod:`spart.training.spider_examples`,
  :mod:`spart.training.supervised_pairs` and :mod:`spart.training.art_data` the training data
- :mod:`spart.training.checkpoint`   atomic checkpoints, RNG capture, exact resume
- :mod:`spart.training.distributed`  torchrun init, all-gather with gradient, gradient averaging, rank logging
- :mod:`spart.training.schedule`     AdamW + linear warm-up / decay
- :mod:`spart.training.grad_cache`   GradCache: large batches in bounded memory
- :mod:`spart.training.losses`       one loss per module

Names are imported lazily: ``import spart.training`` does not load torch.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "TrainingConfig": "spart.training.config",
        "EncoderTrainingConfig": "spart.training.config",
        "ContrastiveTrainingConfig": "spart.training.config",
        "ARTTrainingConfig": "spart.training.config",
        "TeacherConfig": "spart.training.config",
        "load_config": "spart.training.config",
        "METHODS": "spart.training.registry",
        "TrainingMethod": "spart.training.registry",
        "get_method": "spart.training.registry",
        "run_training": "spart.training.registry",
        "build_encoder": "spart.training.models",
        "Checkpointer": "spart.training.checkpoint",
        "DistributedContext": "spart.training.distributed",
        "init_distributed": "spart.training.distributed",
        "all_gather_with_grad": "spart.training.distributed",
        "build_adamw": "spart.training.schedule",
        "linear_warmup_decay": "spart.training.schedule",
        "ContrastiveTrainer": "spart.training.contrastive",
        "ARTTrainer": "spart.training.art",
    },
)
