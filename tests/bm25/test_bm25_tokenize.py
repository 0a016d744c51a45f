"""Tokenizer defaults and options."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spart.bm25 import Tokenizer


def test_defaults_lowercase_split_stopwords_no_stemming():
    tok = Tokenizer()
    assert tok("The Cats are RUNNING, a b c 42 x2!") == ["cats", "running", "42", "x2"]
    assert tok("") == [] and tok(None) == []


def test_options():
    assert Tokenizer(stopwords=None)("The cat") == ["the", "cat"]
    assert Tokenizer(stemmer="english")("The cats are running") == ["cat", "run"]
    assert Tokenizer(stopwords=["cat"])("The cat sat") == ["the", "sat"]
    assert Tokenizer(lowercase=False, stopwords=None)("Big CAT") == ["Big", "CAT"]
    assert Tokenizer(token_pattern=r"\w+", stopwords=None)("a b") == ["a", "b"]


def test_round_trip_and_errors():
    tok = Tokenizer(stopwords=["x"], stemmer="english")
    assert Tokenizer.from_dict(tok.to_dict()).to_dict() == tok.to_dict()
    with pytest.raises(ValueError, match="unknown stop word language"):
        Tokenizer(stopwords="klingon")
    with pytest.raises(ValueError, match="no stemmer for language"):
        Tokenizer(stemmer="klingon")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1_ é日-.,' \t\n\u00a0\u0301Z")), max_size=60))
def test_the_faster_equivalent_of_the_default_pattern_finds_the_same_tokens(text):
    import re

    from spart.bm25.tokenize import _EQUIVALENT_PATTERNS, DEFAULT_TOKEN_PATTERN

    want = re.findall(DEFAULT_TOKEN_PATTERN, text)
    assert re.findall(_EQUIVALENT_PATTERNS[DEFAULT_TOKEN_PATTERN], text) == want
    assert Tokenizer(lowercase=False, stopwords=None)(text) == want
