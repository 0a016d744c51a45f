"""Shared model code: the dual encoder used by the embedders, both trainers and evaluation.

Names are imported lazily so that ``import spart.encoders`` does not load torch.
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "DualEncoder": ".dual_encoder",
        "DualEncoderConfig": ".config",
        "SPIDER_DEFAULTS": ".config",
        "ART_DEFAULTS": ".config",
    },
)
