"""BaseInterpolatedTeacher: the ART target mixed with the frozen base retriever's score."""

from __future__ import annotations

import numpy as np
import pytest

from spart.data import Passage
from spart.fusion import interpolate_zscores
from spart.teacher.mixing import BaseInterpolatedTeacher


class FakeTeacher:
    fingerprint = "lm"
    stats = {"pairs": 3, "cache_hits": 1}

    def score_topk(self, questions, passages):
        return np.array([[-float(len(p.text)) for p in row] for row in passages])


class FakeEncoder:
    fingerprint = "enc"

    def __init__(self):
        self.encoded_passages = 0

    def encode_queries(self, texts, batch_size=64):
        return np.array([[1.0, float(len(t))] for t in texts], dtype=np.float32)

    def encode_passages(self, texts, titles, batch_size=64):
        self.encoded_passages += len(texts)
        return np.array([[float(t.count("x")), 0.0] for t in texts], dtype=np.float32)


ROWS = [[Passage("a", "x"), Passage("b", "xxx yy"), Passage("c", "xx")], [Passage("b", "xxx yy"), Passage("d", "y")]]


@pytest.mark.parametrize("weight", [0.0, 0.4, 1.0])
def test_scores_are_the_per_question_interpolation(weight):
    encoder = FakeEncoder()
    teacher = BaseInterpolatedTeacher(FakeTeacher(), encoder, weight)
    rows = [ROWS[0], [ROWS[0][1], ROWS[0][2], ROWS[1][1]]]
    got = teacher.score_topk(["q1", "q2"], rows)
    lm = FakeTeacher().score_topk(None, rows)
    base = [[1.0, 3.0, 2.0], [3.0, 2.0, 0.0]]
    for i in range(2):
        assert got[i] == pytest.approx(interpolate_zscores(lm[i].tolist(), base[i], weight), abs=1e-6)


def test_embeddings_are_cached_and_stats_pass_through():
    encoder = FakeEncoder()
    teacher = BaseInterpolatedTeacher(FakeTeacher(), encoder, 0.5)
    teacher.base_scores(["q"], [ROWS[0]])
    teacher.base_scores(["q", "r"], [ROWS[0], [ROWS[1][1], ROWS[0][0], ROWS[0][1]]])
    assert encoder.encoded_passages == 4  # a, b, c once, then only d
    assert teacher.stats == {"pairs": 3, "cache_hits": 1}
    assert teacher.fingerprint == "lm+base0.5:enc"
    with pytest.raises(ValueError, match="base_weight"):
        BaseInterpolatedTeacher(FakeTeacher(), encoder, 1.2)
