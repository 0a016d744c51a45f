"""``spart serve``: spart's pipelines over REST (hayhooks) and a search page, in one process.

``create_app({"hybrid_qa": {"store": "stores/wiki"}})`` returns the FastAPI application; see docs/serving.md.
Names load lazily (no hayhooks, FastAPI or Haystack import at package import).
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "create_app": ".app",
        "default_pipelines": ".app",
        "SpartPipelineWrapper": ".wrapper",
    },
)
