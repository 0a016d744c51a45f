"""Lazy re-exports for package ``__init__`` modules: ``import spart.x`` stays light (no torch, faiss or
Haystack), and a name imports its module only when it is first used (PEP 562 module ``__getattr__``)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, names: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``.

    :param package: the package's ``__name__``.
    :param names: exported name -> module that defines it, absolute (``spart.x.y``) or relative (``.y``).

    Usage (in a package ``__init__``)::

        __all__, __getattr__, __dir__ = lazy_exports(__name__, {"DualEncoder": ".dual_encoder"})
    """
    names = dict(names)

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return sorted(names), __getattr__, __dir__
