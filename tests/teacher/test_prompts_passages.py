import pytest
from haystack import Document

from spart.data.readers import Passage
from spart.teacher.passages import TeacherPassage, as_passage
from spart.teacher.prompts import PromptTemplate, default_template


def test_render_passage_and_question():
    template = PromptTemplate()
    assert template.render_passage("Paris", "Capital of France") == (
        "Passage: Paris Capital of France. Please write a question based on this passage."
    )
    assert template.render_question("Where?") == "Question: Where?"


def test_empty_title_leaves_no_double_space():
    assert PromptTemplate().render_passage("", "Text").startswith("Passage: Text.")


def test_template_validation():
    with pytest.raises(ValueError, match="text"):
        PromptTemplate(passage="no placeholder")
    with pytest.raises(ValueError, match="question"):
        PromptTemplate(question="no placeholder")


def test_default_templates_differ_by_kind_and_digest():
    seq, causal = default_template("seq2seq"), default_template("causal")
    assert seq != causal and seq.digest() != causal.digest()
    assert causal.passage.endswith("\n")
    with pytest.raises(ValueError):
        default_template("encoder")


def test_as_passage_accepts_reader_passage_document_and_dict():
    from_reader = as_passage(Passage("p1", "some text", "A title"))
    from_doc = as_passage(Document(id="p1", content="some text", meta={"title": "A title"}))
    from_dict = as_passage({"_id": "p1", "title": "A title", "text": "some text"})
    assert from_reader == from_doc == from_dict == TeacherPassage("p1", "A title", "some text")


def test_as_passage_rejects_missing_text():
    with pytest.raises(ValueError, match="'d1' has no text"):
        as_passage(Document(id="d1", content=None))
    with pytest.raises(ValueError, match="no text"):
        as_passage({"id": "x", "text": "  "})
    with pytest.raises(ValueError, match="cannot read"):
        as_passage(42)


def test_text_hash_changes_with_text_and_title():
    base = TeacherPassage("p", "t", "x")
    assert base.text_hash != TeacherPassage("p", "t", "y").text_hash
    assert base.text_hash != TeacherPassage("p", "u", "x").text_hash
