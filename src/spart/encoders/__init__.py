"""Shared model code: the dual encoder used by the embedders, both trainers and evaluation.

Names are imported lazily so that ``import spart.encoders`` does not load torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DualEncoder", "DualEncoderConfig", "SPIDER_DEFAULTS", "ART_DEFAULTS"]


def __getattr__(name: str) -> Any:
    if name == "DualEncoder":
        from spart.encoders.dual_encoder import DualEncoder

        return DualEncoder
    if name in ("DualEncoderConfig", "SPIDER_DEFAULTS", "ART_DEFAULTS"):
        from spart.encoders import config

        return getattr(config, name)
    raise AttributeError(name)
