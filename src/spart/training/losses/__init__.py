"""Training losses, one per module (named after the class)."""

from spart.training.losses.in_batch_contrastive_loss import InBatchContrastiveLoss
from spart.training.losses.kl_distillation_loss import KLDistillationLoss

__all__ = ["InBatchContrastiveLoss", "KLDistillationLoss"]
