"""Lazy re-exports for package ``__init__`` modules: ``import spart.x`` stays light (no torch, faiss or
Haystack), and a name imports its module only when it is first used (PEP 562 module ``__getattr__``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, names: Mapping[str, str]
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``.

    :param package: the package's ``__name__``.
    :param names: exported name -> module that defines it, absolute (``spart.x.y``) or relative (``.y``).

    Usage (in a package ``__init__``)::

        __all__, __getattr__, __dir__ = lazy_exports(__name__, {"DualEncoder": ".dual_encoder"})

    :raises ImportError: an exported name is also the name of a submodule of ``package``. Importing that
        submodule (from anywhere) sets the package attribute to the module, which would then shadow the
        export: ``from package import name`` would return the module.
    """
    names = dict(names)
    path = getattr(sys.modules.get(package), "__path__", None)
    if path is not None:
        clashes = sorted(set(names) & {info.name for info in pkgutil.iter_modules(path)})
        if clashes:
            raise ImportError(
                f"{package}: exported name(s) {clashes} are also submodules of the package and would be "
                "shadowed by them; rename the module(s)"
            )

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return sorted(names), __getattr__, __dir__
