"""The passage type and its adapter: every shape a passage arrives in reads as one :class:`Passage`."""

import pytest
from haystack import Document

from spart.data import Passage, as_passage
from spart.data.readers import Passage as ReaderPassage


def test_readers_yield_the_one_passage_type():
    assert ReaderPassage is Passage


def test_as_passage_accepts_reader_passage_document_and_dict():
    from_reader = as_passage(Passage("p1", "some text", "A title"))
    from_doc = as_passage(Document(id="p1", content="some text", meta={"title": "A title"}))
    from_dict = as_passage({"_id": "p1", "title": "A title", "text": "some text"})
    assert from_reader == from_doc == from_dict == Passage(id="p1", text="some text", title="A title")


def test_as_passage_rejects_missing_text():
    with pytest.raises(ValueError, match="'d1' has no text"):
        as_passage(Document(id="d1", content=None))
    with pytest.raises(ValueError, match="no text"):
        as_passage({"id": "x", "text": "  "})
    with pytest.raises(ValueError, match="cannot read"):
        as_passage(42)


def test_text_hash_changes_with_text_and_title():
    base = Passage(id="p", text="x", title="t")
    assert base.text_hash != Passage(id="p", text="y", title="t").text_hash
    assert base.text_hash != Passage(id="p", text="x", title="u").text_hash
    # The teacher's score cache is keyed by it: the formula must not drift.
    assert base.text_hash == "cf8028329ec9d1b6a7da818f"


def test_as_passage_accepts_training_example_shapes():
    expected = Passage(id="a", text="some text", title="T")
    assert as_passage(("a", "T", "some text")) == expected  # tuples are (id, title, text)
    assert as_passage(["a", "T", "some text"]) == expected
    assert as_passage({"id": "a", "title": "T", "content": "some text"}) == expected
    assert as_passage(expected) is expected

    class Attributes:
        id, title, text = 7, None, "some text"

    assert as_passage(Attributes()) == Passage(id="7", text="some text", title="")


def test_as_passage_errors_name_the_passage():
    with pytest.raises(ValueError, match="example 0 positive 'a' has no text"):
        as_passage(("a", "", ""), "example 0 positive")
    with pytest.raises(ValueError, match="cannot read example 1 negative from int"):
        as_passage(3, "example 1 negative")
    with pytest.raises(ValueError, match="cannot read"):
        as_passage(("a", "b"))  # a tuple must have three fields
