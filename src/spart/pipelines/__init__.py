"""Ready-made YAML pipelines (``bm25_qa``, ``dense_qa``, ``hybrid_qa``), their loader and the store builder.

``load_pipeline("hybrid_qa", store="path/to/store")`` returns a Haystack pipeline; ``retrieve(pipeline, q)``
asks it one question. See docs/pipelines.md. Names load lazily (no Haystack import at package import).
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "available_pipelines": ".loader",
    "load_pipeline": ".loader",
    "pipeline_path": ".loader",
    "read_pipeline_dict": ".loader",
    "configure_pipeline_dict": ".loader",
    "query_inputs": ".loader",
    "retrieve": ".loader",
    "build_store": ".build",
    "read_build_info": ".build",
})
