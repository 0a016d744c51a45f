"""What a recurring span is: maximality, stopword and token rules, the tokenizer, config checks, JSON form."""

from __future__ import annotations

import json

import pytest

from spart.training.spans import DocumentSpans, SpanMiningConfig, mine_documents, tokenize
from spart.training.stopwords import NLTK_ENGLISH_STOPWORDS


def test_maximal_spans_on_a_known_document():
    docs = [
        (
            "NYC",
            [
                ("p1", "New York City is big. The river of New York City."),
                ("p2", "I love New York City and its river."),
                ("p3", "New York state, New York."),
            ],
        )
    ]
    clusters = mine_documents(docs, SpanMiningConfig())[0].clusters
    by_span = {c.span: c.occurrences for c in clusters}
    # "new york city" covers the "new york"s of p1/p2 but not those of p3, so both stay; "york city" is
    # always inside "new york city" and goes.
    assert by_span["new york city"] == (("p1", 0, 3), ("p1", 9, 12), ("p2", 2, 5))
    assert by_span["new york"] == (
        ("p1", 0, 2),
        ("p1", 9, 11),
        ("p2", 2, 4),
        ("p3", 0, 2),
        ("p3", 4, 6),
    )
    assert "york city" not in by_span
    assert "river" not in by_span  # 1-token spans are off by default
    all_spans = {c.span for c in mine_documents(docs, SpanMiningConfig(maximal_only=False))[0].clusters}
    assert {"york city", "new york city", "new york"} <= all_spans


def test_stopword_and_token_rules():
    passages = [
        ("a", "the end of the world, in 1999 Paris x2 b and the end"),
        ("b", "in 1999 Paris x2 b the end of the world and"),
    ]
    spans = {c.span for c in mine_documents([("d", passages)], SpanMiningConfig(min_span_length=1))[0].clusters}
    assert "end of the world" in spans  # stopwords inside are fine
    assert "the end of the world" not in spans  # starts with a stopword
    assert "1999 paris" in spans
    assert not any("x2" in s for s in spans)  # mixed letters/digits never belong to a span
    single = {c.span for c in mine_documents([("d", passages)], SpanMiningConfig(1, 1))[0].clusters}
    assert single == {"1999", "paris"}  # capitalised or 4-digit; "end"/"world" are lowercase


def test_tokenizer_is_the_specified_regex():
    assert tokenize("Don't stop_me (now), 3.14!") == [
        "Don",
        "'",
        "t",
        "stop",
        "_",
        "me",
        "(",
        "now",
        ")",
        ",",
        "3",
        ".",
        "14",
        "!",
    ]


def test_stopword_list_is_nltk_english():
    assert len(NLTK_ENGLISH_STOPWORDS) == 179
    assert {"the", "mightn't", "ourselves", "ll"} <= NLTK_ENGLISH_STOPWORDS


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_span_length": 0},
        {"min_span_length": 3, "max_span_length": 2},
        {"max_span_length": 40},
        {"min_document_passages": 0},
        {"min_span_passages": 0},
        {"title_separator": ""},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        SpanMiningConfig(**kwargs)


def test_json_round_trip():
    docs = [('Dö"c', [("a\tb", "Zürich New York é"), ("c", "Zürich New York"), ("d", "x")])]
    result = mine_documents(docs, SpanMiningConfig())[0]
    assert result.clusters
    line = json.dumps(result.to_json(), ensure_ascii=False)
    assert DocumentSpans.from_json(json.loads(line)) == result
