"""Ready-made YAML pipelines (``bm25_qa``, ``dense_qa``, ``hybrid_qa``), their loader and the store builder.

``load_pipeline("hybrid_qa", store="path/to/store")`` returns a Haystack pipeline; ``retrieve(pipeline, q)``
asks it one question. See docs/pipelines.md. Names load lazily (no Haystack import at package import).
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "available_pipelines": "loader",
    "load_pipeline": "loader",
    "pipeline_path": "loader",
    "read_pipeline_dict": "loader",
    "configure_pipeline_dict": "loader",
    "query_inputs": "loader",
    "retrieve": "loader",
    "build_store": "build",
    "read_build_info": "build",
}

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
