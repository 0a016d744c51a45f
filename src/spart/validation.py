"""Argument checks shared by the components, the pipeline runner and the evaluation code.

Kept free of heavy imports (no numpy, torch, faiss or Haystack), so every layer can use it.
"""

from __future__ import annotations

import numbers
from typing import Any


def check_positive_int(value: Any, name: str, *, allow_none: bool = False) -> int | None:
    """Check a count (a list length, a batch size...): a positive integer, or ``None`` where allowed.

    ``bool`` is refused even though it is an ``int``; NumPy integers are accepted.

    :param value: the value to check.
    :param name: the parameter's name, used in the error message.
    :param allow_none: accept ``None`` (e.g. "the component's own setting" or "all").
    :returns: ``value`` as a plain ``int`` (or ``None``).
    :raises ValueError: ``"<name> must be a positive integer[ or None], got <value>"``.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        allowed = "a positive integer or None" if allow_none else "a positive integer"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_top_k(value: Any, name: str = "top_k", *, allow_none: bool = False) -> int | None:
    """Check a number of documents (``top_k``, ``depth``): the one check every component and runner uses.

    :param value: the value to check.
    :param name: the parameter's name, used in the error message (``"top_k"`` unless told).
    :param allow_none: accept ``None``.
    :returns: ``value`` as a plain ``int`` (or ``None``).
    :raises ValueError: ``"top_k must be a positive integer, got 0"`` (naming ``name`` and the value).
    """
    return check_positive_int(value, name, allow_none=allow_none)
