"""The ``spart demo`` runner and its data: hybrid QA over Wikipedia summaries fetched from PyPI at run time.

Names load lazily (no Haystack or torch import at package import).
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "run_demo": "runner",
    "prepare_store": "runner",
    "load_demo_data": "runner",
    "default_cache_dir": "runner",
    "DemoDataError": "data",
}

__all__ = list(_MODULES)


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
