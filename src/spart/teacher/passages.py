"""Adapting the passage types spart meets (readers' ``Passage``, Haystack ``Document``, dicts) to one shape."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class PassageLike(Protocol):
    """Anything with ``id``, ``title`` and ``text`` attributes (e.g. ``spart.data.readers.Passage``)."""

    id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class TeacherPassage:
    """The normalised passage the teacher scores."""

    id: str
    title: str
    text: str

    @property
    def text_hash(self) -> str:
        """Hash of title and text: an edited passage gets a new cache key even when its id is unchanged."""
        return hashlib.sha256(f"{self.title}\x1f{self.text}".encode()).hexdigest()[:24]


def as_passage(obj: Any, title_field: str = "title") -> TeacherPassage:
    """Normalise one passage.

    Accepts objects with ``id``/``title``/``text`` (readers' ``Passage``), Haystack ``Document`` (``content``,
    title from ``meta[title_field]``) and dicts with ``text`` or ``content`` (``id``/``_id``, ``title``).

    :raises ValueError: when the passage has no text.
    """
    if isinstance(obj, TeacherPassage):
        passage = obj
    elif isinstance(obj, dict):
        text = obj.get("text", obj.get("content"))
        pid = obj.get("id", obj.get("_id"))
        passage = TeacherPassage(_str_or_empty(pid), _str_or_empty(obj.get("title")), text)
    elif hasattr(obj, "content") and hasattr(obj, "meta"):  # Haystack Document
        meta = obj.meta or {}
        passage = TeacherPassage(_str_or_empty(obj.id), _str_or_empty(meta.get(title_field)), obj.content)
    elif hasattr(obj, "text"):
        passage = TeacherPassage(
            _str_or_empty(getattr(obj, "id", "")), _str_or_empty(getattr(obj, "title", "")), obj.text
        )
    else:
        raise ValueError(f"cannot read a passage from {type(obj).__name__}: need id/title/text or a Document")
    if not isinstance(passage.text, str) or not passage.text.strip():
        raise ValueError(f"passage {passage.id!r} has no text")
    return passage


def _str_or_empty(value: Any) -> str:
    return "" if value is None else str(value)
