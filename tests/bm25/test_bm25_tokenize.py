"""Tokenizer defaults and options."""

from __future__ import annotations

import pytest

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
