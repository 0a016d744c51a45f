"""Top-k accuracy and the ranx-backed BEIR metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spart.evaluation.metrics import (
    accuracy_curve,
    beir_metrics,
    first_hit_ranks,
    top_k_accuracy,
)


def test_top_k_accuracy_counts_first_hit():
    hits = [[False, True, True], [True], [False, False, False], [False, False, True]]
    assert first_hit_ranks(hits).tolist() == [2, 1, 0, 3]
    assert top_k_accuracy(hits, ks=(1, 2, 3, 100)) == {1: 0.25, 2: 0.5, 3: 0.75, 100: 0.75}


def test_accuracy_curve_matches_top_k():
    rng = np.random.default_rng(0)
    hits = (rng.random((50, 30)) < 0.05).tolist()
    curve = accuracy_curve(hits, max_k=30)
    table = top_k_accuracy(hits, ks=range(1, 31))
    assert np.allclose(curve, [table[k] for k in range(1, 31)])
    assert np.all(np.diff(curve) >= 0)


def test_top_k_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="positive"):
        top_k_accuracy([[True]], ks=(0,))
    with pytest.raises(ValueError, match="no questions"):
        top_k_accuracy([], ks=(1,))


QRELS = {"q2": {"d1": 1, "d2": 1}, "q1": {"d3": 1}}


def test_beir_metrics_known_values_and_query_order():
    ranked = {
        "q1": ["d9", "d3"],  # relevant at rank 2
        "q2": ["d1", "d5", "d2"],  # relevant at ranks 1 and 3
        "q3": ["d1"],  # unjudged: ignored
    }
    means, per_query = beir_metrics(QRELS, ranked, metrics=("ndcg@10", "mrr@10", "recall@2", "map"))
    # hand-derived: q1 ndcg = 1/log2(3); q2 ndcg = (1 + 1/log2(4)) / (1 + 1/log2(3))
    q1_ndcg = 1 / math.log2(3)
    q2_ndcg = (1 + 0.5) / (1 + 1 / math.log2(3))
    assert per_query["q1"]["ndcg@10"] == pytest.approx(q1_ndcg)
    assert per_query["q2"]["ndcg@10"] == pytest.approx(q2_ndcg)
    assert per_query["q1"]["mrr@10"] == pytest.approx(0.5)
    assert per_query["q2"]["mrr@10"] == pytest.approx(1.0)
    assert per_query["q2"]["recall@2"] == pytest.approx(0.5)
    assert per_query["q2"]["map"] == pytest.approx((1 + 2 / 3) / 2)
    assert means["ndcg@10"] == pytest.approx((q1_ndcg + q2_ndcg) / 2)
    assert set(per_query) == {"q1", "q2"}


def test_beir_metrics_uses_given_order_not_scores():
    # order is all that is passed; a different order changes the result
    a, _ = beir_metrics(QRELS, {"q1": ["d3", "x"], "q2": ["d1", "d2"]}, metrics=("mrr@10",))
    b, _ = beir_metrics(QRELS, {"q1": ["x", "d3"], "q2": ["d1", "d2"]}, metrics=("mrr@10",))
    assert a["mrr@10"] == pytest.approx(1.0) and b["mrr@10"] == pytest.approx(0.75)


def test_beir_metrics_empty_ranking_scores_zero():
    means, per_query = beir_metrics(QRELS, {"q1": [], "q2": ["d1"]}, metrics=("recall@10",))
    assert per_query["q1"]["recall@10"] == 0.0
    assert per_query["q2"]["recall@10"] == pytest.approx(0.5)


def test_beir_metrics_missing_query_is_an_error():
    with pytest.raises(ValueError, match="no ranking"):
        beir_metrics(QRELS, {"q1": ["d3"]})
