"""sample_passages: round-robin over documents, seeded, skipping short passages."""

from __future__ import annotations

import pytest

from spart.data import Passage
from spart.generation import sample_passages


def passages(sizes=(5, 1, 3, 2)) -> list[Passage]:
    out = []
    for d, size in enumerate(sizes):
        for j in range(size):
            out.append(Passage(f"d{d}p{j}", " ".join(["word"] * 30), f"Doc {d} — Section {j}"))
    out.append(Passage("short", "See the next question.", "Doc 9"))
    return out


def test_every_document_is_visited_before_any_gives_a_second_passage():
    ps = passages()
    order = sample_passages(ps, 8, seed=1)
    docs = [ps[i].title.split(" — ")[0] for i in order]
    assert len(set(docs[:4])) == 4  # first round: one passage of each of the 4 documents
    assert len(order) == len(set(order)) == 8
    assert ps.index(next(p for p in ps if p.id == "short")) not in order


def test_seeded_and_bounded_by_the_corpus():
    ps = passages()
    assert sample_passages(ps, 6, seed=2) == sample_passages(ps, 6, seed=2)
    assert sample_passages(ps, 6, seed=2) != sample_passages(ps, 6, seed=3)
    assert len(sample_passages(ps, 100, seed=0)) == 11  # every long-enough passage, no more
    assert sample_passages(ps, 3, seed=2) == sample_passages(ps, 6, seed=2)[:3]


def test_errors():
    with pytest.raises(ValueError, match="positive"):
        sample_passages(passages(), 0)
    with pytest.raises(ValueError, match="at least 20 words"):
        sample_passages([Passage("a", "too short", "t")], 1)
