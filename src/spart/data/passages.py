"""The one passage type of spart and the one adapter that turns the shapes passages arrive in into it.

Readers yield :class:`Passage`; the trainers' examples, the teacher's inputs and the evidence corpus use it
too. :func:`as_passage` accepts a :class:`Passage`, an ``(id, title, text)`` tuple or list, a mapping
(``id``/``_id``, ``title``, ``text``/``content``), a Haystack ``Document`` (``content``, title from
``meta[title_field]``) or any object with ``text`` (and optionally ``id`` and ``title``) attributes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieval unit: a passage id, its text and the title of the document it comes from."""

    id: str
    text: str
    title: str = ""

    @property
    def text_hash(self) -> str:
        """Hash of title and text: an edited passage gets a new cache key even when its id is unchanged."""
        return hashlib.sha256(f"{self.title}\x1f{self.text}".encode()).hexdigest()[:24]


def as_passage(value: Any, what: str = "passage", *, title_field: str = "title") -> Passage:
    """Normalise one passage (see the module docstring for the accepted shapes).

    :param value: the passage in any accepted shape.
    :param what: how error messages name it (e.g. ``"example 3 positive"``).
    :param title_field: the ``meta`` key holding a Haystack ``Document``'s title.
    :returns: a :class:`Passage`; a missing id or title reads as ``""``.
    :raises ValueError: for an unsupported shape, or a passage whose text is missing or blank.
    """
    if isinstance(value, Passage):
        passage = value
    elif isinstance(value, Mapping):
        text = value.get("text", value.get("content"))
        passage = Passage(_str_or_empty(value.get("id", value.get("_id"))), text, _str_or_empty(value.get("title")))
    elif isinstance(value, (tuple, list)) and len(value) == 3:
        pid, title, text = value
        passage = Passage(_str_or_empty(pid), text, _str_or_empty(title))
    elif hasattr(value, "content") and hasattr(value, "meta"):  # a Haystack Document
        meta = value.meta or {}
        passage = Passage(_str_or_empty(value.id), value.content, _str_or_empty(meta.get(title_field)))
    elif hasattr(value, "text"):
        title = _str_or_empty(getattr(value, "title", ""))
        passage = Passage(_str_or_empty(getattr(value, "id", "")), value.text, title)
    else:
        raise ValueError(
            f"cannot read {what} from {type(value).__name__}: need (id, title, text), a mapping with text, "
            f"a Haystack Document or an object with id/title/text, got {value!r}"
        )
    if not isinstance(passage.text, str) or not passage.text.strip():
        raise ValueError(f"{what} {passage.id!r} has no text (missing or an empty text)")
    return passage


def _str_or_empty(value: Any) -> str:
    return "" if value is None else str(value)
