"""Ready-made YAML pipelines (``bm25_qa``, ``dense_qa``, ``hybrid_qa``...), their loader, runner and store builder.

``load_pipeline("hybrid_qa", store="path/to/store")`` returns a Haystack pipeline; ``retrieve(pipeline, q)``
asks it one question (the runner, :mod:`spart.pipelines.running`, documents which inputs get the question
and how ``top_k`` and ``depth`` size the lists). See docs/pipelines.md. Names load lazily (no Haystack import
at package import).
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "available_pipelines": ".loader",
        "load_pipeline": ".loader",
        "pipeline_path": ".loader",
        "read_pipeline_dict": ".loader",
        "configure_pipeline_dict": ".loader",
        "question_inputs": ".running",
        "output_component": ".running",
        "document_components": ".running",
        "run_question": ".running",
        "retrieve": ".running",
        "build_store": ".build",
        "read_build_info": ".build",
    },
)
