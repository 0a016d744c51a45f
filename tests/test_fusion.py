"""spart.fusion: each formula against values computed by hand."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spart.fusion import (
    FUSION_MODES,
    convex_combination,
    fuse,
    normalize_scores,
    reciprocal_rank_fusion,
    weighted_raw_sum,
)

DENSE = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
BM25 = [("b", 10.0), ("d", 6.0), ("a", 2.0)]


def _as_dict(fused):
    return dict(fused)


def test_rrf_default_k60():
    fused = reciprocal_rank_fusion([DENSE, BM25])
    expected = {"a": 1 / 61 + 1 / 63, "b": 1 / 62 + 1 / 61, "c": 1 / 63, "d": 1 / 62}
    assert [d for d, _ in fused] == ["b", "a", "d", "c"]
    assert _as_dict(fused) == pytest.approx(expected, rel=1e-12)


def test_rrf_weights_and_k():
    fused = reciprocal_rank_fusion([DENSE, BM25], weights=[2.0, 1.0])
    assert [d for d, _ in fused] == ["a", "b", "c", "d"]  # 2/61+1/63 = 0.048660 > 2/62+1/61 = 0.048651
    assert _as_dict(fused)["a"] == pytest.approx(2 / 61 + 1 / 63)
    fused = reciprocal_rank_fusion([DENSE, BM25], k=0, top_k=2)
    assert fused == [("b", pytest.approx(1 / 2 + 1)), ("a", pytest.approx(1 + 1 / 3))]


def test_convex_minmax():
    # dense: a=1, b=0.5, c=0; bm25: b=1, d=0.5, a=0; missing -> 0.
    fused = convex_combination([DENSE, BM25])
    assert _as_dict(fused) == pytest.approx({"a": 0.5, "b": 0.75, "c": 0.0, "d": 0.25})
    assert [d for d, _ in fused] == ["b", "a", "d", "c"]
    fused = convex_combination([DENSE, BM25], weights=[0.3, 0.7])
    assert _as_dict(fused) == pytest.approx({"a": 0.3, "b": 0.15 + 0.7, "c": 0.0, "d": 0.35})


def test_convex_zscore():
    z = math.sqrt(1.5)  # scores (x+d, x, x-d) have population std d*sqrt(2/3): z = ±1.2247...
    fused = convex_combination([DENSE, BM25], normalization="zscore")
    # a: .5*(z - z); b: .5*(0 + z); c: .5*(-z + min z of bm25 = -z); d: .5*(min z of dense = -z + 0)
    assert _as_dict(fused) == pytest.approx({"a": 0.0, "b": z / 2, "c": -z, "d": -z / 2}, abs=1e-12)
    assert [d for d, _ in fused] == ["b", "a", "d", "c"]


def test_weighted_raw_is_dense_plus_lambda_bm25():
    # Missing scores take the list's minimum: c gets bm25 2.0, d gets dense 0.1.
    fused = weighted_raw_sum([DENSE, BM25], weights=[1.0, 0.1])
    assert _as_dict(fused) == pytest.approx({"a": 1.1, "b": 1.5, "c": 0.3, "d": 0.7})
    assert [d for d, _ in fused] == ["b", "a", "d", "c"]
    fused = weighted_raw_sum([DENSE, BM25], weights=[1.0, 0.01])
    assert [d for d, _ in fused] == ["a", "b", "d", "c"]
    assert _as_dict(fused) == pytest.approx({"a": 0.92, "b": 0.6, "c": 0.12, "d": 0.16})


def test_fuse_dispatches_by_name():
    assert fuse([DENSE, BM25], "rrf") == reciprocal_rank_fusion([DENSE, BM25])
    assert fuse([DENSE, BM25], "convex_minmax") == convex_combination([DENSE, BM25])
    assert fuse([DENSE, BM25], "convex_zscore") == convex_combination([DENSE, BM25], normalization="zscore")
    assert fuse([DENSE, BM25], "weighted_raw", [1, 0.1], top_k=1) == [("b", pytest.approx(1.5))]
    with pytest.raises(ValueError, match="unknown fusion mode 'max'"):
        fuse([DENSE], "max")


def test_degenerate_lists():
    assert normalize_scores([3.0, 3.0], "minmax") == ([1.0, 1.0], 0.0)
    assert normalize_scores([3.0, 3.0], "zscore") == ([0.0, 0.0], 0.0)
    assert normalize_scores([], "minmax") == ([], 0.0)
    for mode in FUSION_MODES:
        assert fuse([[], []], mode) == []
        assert [d for d, _ in fuse([[], [("x", 1.0)]], mode)] == ["x"]


def test_ties_keep_first_appearance_and_duplicates_keep_best_rank():
    assert [d for d, _ in reciprocal_rank_fusion([[("x", 0)], [("y", 0)]])] == ["x", "y"]
    assert [d for d, _ in weighted_raw_sum([[("y", 1.0), ("x", 1.0)]])] == ["y", "x"]
    fused = reciprocal_rank_fusion([[("x", 1.0), ("y", 0.5), ("x", 0.1)]])
    assert _as_dict(fused) == pytest.approx({"x": 1 / 61, "y": 1 / 62})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fuse([DENSE, BM25], "rrf", weights=[1.0]), "1 weights for 2 ranked lists"),
        (lambda: fuse([DENSE], "rrf", weights=[-1.0]), "weight 0"),
        (lambda: fuse([DENSE], "rrf", top_k=0), "top_k"),
        (lambda: fuse([[("a", float("nan"))]], "weighted_raw"), "finite"),
        (lambda: fuse([[("a", None)]], "convex_minmax"), "finite"),
        (lambda: fuse([["a"]], "rrf"), "pair"),
        (lambda: reciprocal_rank_fusion([DENSE], k=-1), "RRF constant"),
        (lambda: convex_combination([DENSE], normalization="l2"), "normalization"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_rrf_ignores_scores():
    assert fuse([[("a", None), ("b", None)]], "rrf") == [("a", pytest.approx(1 / 61)), ("b", pytest.approx(1 / 62))]


ranked = st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats(-100, 100)), max_size=8)


@given(st.lists(ranked, min_size=1, max_size=3), st.sampled_from(FUSION_MODES))
def test_output_is_the_union_sorted_by_score(lists, mode):
    fused = fuse(lists, mode)
    assert {d for d, _ in fused} == {d for lst in lists for d, _ in lst}
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)


def test_importable_without_torch_or_haystack():
    code = "import sys, spart.fusion; assert 'torch' not in sys.modules and 'haystack' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_interpolate_zscores():
    from spart.fusion import interpolate_zscores

    lm, retriever = [-1.0, -2.0, -3.0], [0.1, 0.9, 0.5]
    assert interpolate_zscores(lm, retriever, 0.0) == pytest.approx([1.2247449, 0.0, -1.2247449])
    assert interpolate_zscores(lm, retriever, 1.0) == pytest.approx([-1.2247449, 1.2247449, 0.0])
    half = interpolate_zscores(lm, retriever, 0.5)
    assert half == pytest.approx([0.0, 0.6123724, -0.6123724])
    assert interpolate_zscores([1.0, 1.0], [1.0, 2.0], 0.5) == pytest.approx([-0.5, 0.5])  # flat list adds 0
    with pytest.raises(ValueError, match="one secondary score"):
        interpolate_zscores([1.0], [1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        interpolate_zscores([1.0], [1.0], 1.5)
    with pytest.raises(ValueError, match="finite"):
        interpolate_zscores([math.nan], [1.0], 0.5)
