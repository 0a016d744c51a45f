"""Dense embedders: SPIDER and ART text (query) and document (passage) embedders over `DualEncoder`.

:mod:`.methods` maps each method and role to its class (``embedder_class("art", "document")``). Names load
lazily, so importing this package does not import torch or Haystack's component machinery.
"""

from __future__ import annotations

from spart._lazy import lazy_exports
from spart.components.embedders.methods import EMBEDDERS

__all__, __getattr__, __dir__ = lazy_exports(__name__, {name: f".{module}" for module, name in EMBEDDERS.values()})
