"""Training: SPIDER span mining and examples, the contrastive trainer (SPIDER pre-training and few-shot
fine-tuning), and the pieces every trainer shares.

Shared, method-independent modules (reused by the ART trainer):

- :mod:`spart.training.config`       pydantic configs from YAML + ``key=value`` overrides
- :mod:`spart.training.checkpoint`   atomic checkpoints, RNG capture, exact resume
- :mod:`spart.training.distributed`  torchrun init, all-gather with gradient, gradient averaging, rank logging
- :mod:`spart.training.schedule`     AdamW + linear warm-up / decay
- :mod:`spart.training.grad_cache`   GradCache: large batches in bounded memory

Contrastive training: :mod:`spart.training.losses` (one loss per module), :mod:`spart.training.contrastive`
(the trainer), :mod:`spart.training.supervised_pairs` (labelled pairs + BM25 hard negatives).

Names are imported lazily: ``import spart.training`` does not load torch.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "TrainingConfig": "spart.training.config",
    "ContrastiveTrainingConfig": "spart.training.config",
    "load_config": "spart.training.config",
    "Checkpointer": "spart.training.checkpoint",
    "DistributedContext": "spart.training.distributed",
    "init_distributed": "spart.training.distributed",
    "all_gather_with_grad": "spart.training.distributed",
    "build_adamw": "spart.training.schedule",
    "linear_warmup_decay": "spart.training.schedule",
    "ContrastiveTrainer": "spart.training.contrastive",
    "ARTTrainer": "spart.training.art",
    "ARTTrainingConfig": "spart.training.art",
})
