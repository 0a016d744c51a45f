"""Training losses, one per module (named after the class)."""

from spart.training.losses.in_batch_contrastive_loss import InBatchContrastiveLoss

__all__ = ["InBatchContrastiveLoss"]
