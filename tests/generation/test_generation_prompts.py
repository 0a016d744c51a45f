"""The generation prompt and the clean-up of LM replies."""

from __future__ import annotations

import pytest

from spart.generation import GenerationPrompt, clean_question


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("How do I sort a list?", "How do I sort a list?"),
        ("Question: How do I sort a list?\nAnswer: use sorted()", "How do I sort a list?"),
        ('1. "What is a tuple?" and more', "What is a tuple?"),
        ("\n\nA user might ask: How do I open a file in Python?", "How do I open a file in Python?"),
        ("Q: Why is the GIL needed? Because...", "Why is the GIL needed?"),
    ],
)
def test_clean_question_extracts_the_question(reply, expected):
    assert clean_question(reply) == (expected, "ok")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("The user wants to know about sockets.", "no question mark"),
        ("", "no question mark"),
        ("Why?", "too short"),
        ("What " + "very " * 50 + "long?", "too long"),
        ("What does the passage say about tuples?", "refers to the passage"),
        ("What is described in this text?", "refers to the passage"),
    ],
)
def test_clean_question_rejects_with_a_reason(reply, reason):
    assert clean_question(reply) == (None, reason)


def test_clean_question_keeps_ordinary_uses_of_text():
    assert clean_question("How do I wrap the text of a paragraph?")[0] == "How do I wrap the text of a paragraph?"


def test_prompt_shows_examples_title_and_cut_passage():
    prompt = GenerationPrompt(examples=("How do I sort?", "  ", "Why tuples?"), max_passage_words=3)
    message = prompt.user_message("Sorting HOW TO", "one two three four five")
    assert "- How do I sort?\n- Why tuples?" in message
    assert "Sorting HOW TO\none two three ..." in message
    assert message.endswith(prompt.instruction)
    assert prompt.digest() != GenerationPrompt().digest()
    assert GenerationPrompt().digest() == GenerationPrompt().digest()


def test_prompt_validation():
    with pytest.raises(ValueError, match="instruction"):
        GenerationPrompt(instruction=" ")
    with pytest.raises(ValueError, match="max_passage_words"):
        GenerationPrompt(max_passage_words=0)
