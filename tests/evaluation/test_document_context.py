"""benchmarks/document_context.py: the training-free context scores, against their definitions computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def dc():
    return load_benchmark("document_context")


@pytest.fixture
def vectors():
    rng = np.random.default_rng(0)
    return rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)


def test_document_means_average_each_title_group_including_the_passage_itself(dc, vectors):
    _, P = vectors
    means = dc.document_means(P, ["a", "b", "a", "c", "a"])
    np.testing.assert_allclose(means[0], P[[0, 2, 4]].mean(0), rtol=1e-6)
    np.testing.assert_allclose(means[2], means[4])
    np.testing.assert_allclose(means[1], P[1])  # a one-passage document is its own mean
    assert not np.allclose(means[0], P[0])


def test_document_scores_add_alpha_times_the_query_document_score(dc, vectors):
    Q, P = vectors
    titles = ["a", "b", "a", "c", "a"]
    means = dc.document_means(P, titles)
    scores = dc.context_scores("document", Q, P, {"alpha": 0.5}, means=means)
    expected = np.array(
        [
            [q @ P[j] + 0.5 * q @ P[[i for i, t in enumerate(titles) if t == titles[j]]].mean(0) for j in range(len(P))]
            for q in Q
        ]
    )
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_feedback_searches_again_with_the_mean_of_the_top_k_added(dc, vectors):
    Q, P = vectors
    scores = dc.context_scores("feedback", Q, P, {"k": 2, "beta": 0.3})
    for i, q in enumerate(Q):
        top2 = np.argsort(-(P @ q))[:2]
        np.testing.assert_allclose(scores[i], P @ (q + 0.3 * P[top2].mean(0)), rtol=1e-5)


def test_sentence_scores_take_each_passages_best_sentence(dc, vectors):
    Q, P = vectors
    texts = ["One. Two words here.", "Single sentence", "A b. C d. E f.", "x", "Last one? Yes."]
    sentences, starts = dc.split_sentences(texts)
    assert sentences[:3] == ["One.", "Two words here.", "Single sentence"]
    assert starts.tolist() == [0, 2, 3, 6, 7]
    S = np.random.default_rng(1).normal(size=(len(sentences), 4)).astype(np.float32)
    owner = [0, 0, 1, 2, 2, 2, 3, 4, 4]
    best = np.array([[max(q @ S[s] for s in range(len(S)) if owner[s] == j) for j in range(5)] for q in Q])
    alone = dc.context_scores("sentences", Q, P, {"lam": math.inf}, sentences=S, starts=starts)
    np.testing.assert_allclose(alone, best, rtol=1e-5)
    mixed = dc.context_scores("sentences", Q, P, {"lam": 0.5}, sentences=S, starts=starts)
    np.testing.assert_allclose(mixed, Q @ P.T + 0.5 * best, rtol=1e-5)


def test_the_encoder_alone_and_an_unknown_variant(dc, vectors):
    Q, P = vectors
    np.testing.assert_allclose(dc.context_scores("feedback", Q, P, None), Q @ P.T)
    with pytest.raises(ValueError, match="unknown variant 'late'"):
        dc.context_scores("late", Q, P, {"x": 1})
