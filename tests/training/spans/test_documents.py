"""Passages grouped into documents, and which passages of a document are mined."""

from __future__ import annotations

from spart.data import Passage
from spart.training.spans import SpanMiningConfig, iter_documents, select_passages


def _passages(spec: list[tuple[str, int]]) -> list[Passage]:
    out, counter = [], 0
    for title, n in spec:
        for _ in range(n):
            counter += 1
            out.append(Passage(id=f"p{counter}", text=f"text {counter}", title=title))
    return out


def test_documents_group_consecutive_titles_and_a_reappearing_title_is_a_new_document():
    passages = _passages([("A", 3), ("B", 2), ("A", 1)])
    docs = list(iter_documents(passages, SpanMiningConfig()))
    assert [(key, [p.id for p in ps]) for key, ps in docs] == [
        ("A", ["p1", "p2", "p3"]),
        ("B", ["p4", "p5"]),
        ("A", ["p6"]),
    ]
    sectioned = _passages([("Doc — s1", 2), ("Doc — s2", 2), ("Other", 1)])
    keys = [key for key, _ in iter_documents(sectioned, SpanMiningConfig(title_separator=" — "))]
    assert keys == ["Doc", "Other"]


def test_select_passages_drops_last_then_requires_minimum():
    four = _passages([("A", 4)])
    assert select_passages(four, SpanMiningConfig()) == four
    assert [p.id for p in select_passages(four, SpanMiningConfig(drop_last_passage=True))] == ["p1", "p2", "p3"]
    assert select_passages(four[:3], SpanMiningConfig(drop_last_passage=True)) is None
    assert select_passages(four[:2], SpanMiningConfig()) is None
