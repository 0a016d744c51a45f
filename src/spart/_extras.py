"""Optional dependencies: ``pip install spart`` is the core (components, stores, fuser, YAML pipelines); the
extras declared in ``pyproject.toml`` bring the rest. Every import of an optional package goes through
:func:`require`, so a missing one is a one-line error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional package is not installed; the message names the ``spart`` extra that brings it."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` (``"ranx"``, ``"scipy.stats"``...), which the ``spart[extra]`` install brings.

    :param module: dotted module name.
    :param extra: the extra of ``pyproject.toml`` that lists its distribution.
    :returns: the imported module.
    :raises MissingExtraError: when ``module`` (or a package above it) is not installed. An installed
        package that fails to import for another reason (e.g. one of its own dependencies is missing)
        raises its original error.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        parts = module.split(".")
        if error.name not in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}:
            raise
        top = parts[0]
        raise MissingExtraError(
            f"{top} is not installed; it comes with the {extra!r} extra: pip install 'spart[{extra}]'"
        ) from None
