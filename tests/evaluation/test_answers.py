"""has_answer must decide exactly as DPR's qa_validation.has_answer (SimpleTokenizer, NFD, uncased)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spart.evaluation.answers import has_answer, hits_for_ranking, normalize, tokenize


@pytest.mark.parametrize(
    ("answers", "text", "expected"),
    [
        # multi-token answers match as a contiguous, uncased token sequence; whitespace does not matter
        (["Richard Nixon"], "The 37th president was RICHARD   nixon.", True),
        (["Richard Nixon"], "Richard M. Nixon was the president.", False),
        (["Richard Nixon"], "Nixon, Richard", False),
        # partial words never match: tokens are whole runs of letters/digits
        (["Nix"], "Richard Nixon", False),
        (["York"], "New York City", True),
        (["cat"], "concatenate the cats", False),
        # punctuation is tokenised one character at a time and must match exactly
        (["U.S."], "troops of the U.S. army", True),
        (["U.S."], "troops of the US army", False),
        (["Jean-Paul Sartre"], "Jean Paul Sartre", False),
        (["Jean-Paul Sartre"], "the philosopher jean-paul sartre wrote", True),
        (["O'Brien"], "Conan O'Brien hosted", True),
        (["1,000"], "about 1000 people", False),
        (["1,000"], "about 1,000 people", True),
        (["Nixon!"], "Nixon ! he said", True),  # "!" is its own token either way
        # accents: NFD keeps the combining mark inside the token, so accented != unaccented
        (["Beyoncé"], "Beyonce Knowles", False),
        (["Beyoncé"], "BEYONCÉ KNOWLES", True),
        (["Beyonce\u0301"], "Beyonc\u00e9 Knowles", True),  # decomposed answer vs composed text
        (["Zürich"], "zu\u0308rich is a city", True),
        # any of several answers
        (["Ford", "Nixon"], "Gerald Ford", True),
        (["Ford", "Nixon"], "Jimmy Carter", False),
        # numbers and letters are one token when adjacent
        (["20th"], "the 20th century", True),
        (["20"], "the 20th century", False),
    ],
)
def test_has_answer_string_mode_known_dpr_outcomes(answers, text, expected):
    assert has_answer(answers, text) is expected


def test_none_text_is_no_hit():
    assert has_answer(["x"], None) is False


@pytest.mark.parametrize(
    ("patterns", "text", "expected"),
    [
        (["Nixon|Ford"], "President GERALD FORD", True),  # IGNORECASE
        (["\\d{4}"], "in 1969 they landed", True),
        (["^landed"], "in 1969 they\nlanded", True),  # MULTILINE: ^ matches after the newline
        (["Nix"], "Richard Nixon", True),  # regex search is not token-bounded
        (["\\bNix\\b"], "Richard Nixon", False),
        (["caf\u00e9"], "cafe\u0301 society", True),  # pattern and text both NFD-normalised
        (["(unclosed"], "(unclosed", False),  # a pattern that does not compile is no match, as in DPR
    ],
)
def test_has_answer_regex_mode(patterns, text, expected):
    assert has_answer(patterns, text, match_type="regex") is expected


def test_bad_arguments():
    with pytest.raises(ValueError, match="match_type"):
        has_answer(["a"], "a", match_type="fuzzy")
    with pytest.raises(ValueError, match="single string"):
        has_answer("a", "a")
    with pytest.raises(ValueError, match="empty after tokenisation"):
        has_answer(["   "], "anything")


def test_tokenize_is_drqa_simple_tokenizer():
    assert tokenize(normalize("Hello, World! It's 3.5km—far")) == [
        "hello",
        ",",
        "world",
        "!",
        "it",
        "'",
        "s",
        "3",
        ".",
        "5km",
        "—",
        "far",
    ]
    # combining marks stay inside their token; control characters and separators are dropped
    assert tokenize(normalize("naïve\u200b\tcafé")) == ["nai\u0308ve", "cafe\u0301"]


def test_hits_for_ranking():
    assert hits_for_ranking(["Paris"], ["Lyon is big", None, "paris, France"]) == [False, False, True]


def _dpr_sliding_window(answers, text):
    """The reference loop of DPR's has_answer, written out: compare token windows one by one."""
    words = tokenize(normalize(text))
    for answer in answers:
        answer_words = tokenize(normalize(answer))
        for i in range(0, len(words) - len(answer_words) + 1):
            if answer_words == words[i : i + len(answer_words)]:
                return True
    return False


_alphabet = st.sampled_from(list("abAB \u0301.,-'1\t\n\u00e9ß\u200b"))


@settings(max_examples=300, deadline=None)
@given(
    answers=st.lists(
        st.text(_alphabet, min_size=1, max_size=6).filter(lambda a: tokenize(normalize(a))), min_size=1, max_size=3
    ),
    text=st.text(_alphabet, max_size=40),
)
def test_fast_match_equals_dpr_window_loop(answers, text):
    assert has_answer(answers, text) == _dpr_sliding_window(answers, text)
