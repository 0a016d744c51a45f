"""SegmentedBM25: after any sequence of adds and deletes, scores equal a from-scratch index (to 1e-6)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spart.bm25 import BM25Index, segments
from spart.bm25.scoring import VARIANTS
from spart.bm25.segments import SegmentedBM25

_WORDS = [f"w{i}" for i in range(12)]
_DOC = st.lists(st.sampled_from(_WORDS), max_size=8)
# one step: ("add", documents) or ("delete", indices into the live ids)
_STEP = st.one_of(
    st.tuples(st.just("add"), st.lists(_DOC, min_size=1, max_size=6)),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 50), min_size=1, max_size=4)),
)
# ... or save the index into a fresh directory and map it ("checkpoint")
_STEP_OR_SAVE = st.one_of(_STEP, st.tuples(st.just("save"), st.none()))


def _reference(method: str, live: dict[int, list[str]], query: list[str]) -> tuple[np.ndarray, np.ndarray]:
    ids = sorted(live)
    index = BM25Index(method)
    index.build([live[i] for i in ids])
    scores, positions = index.search(query, k=10_000)
    return scores, np.asarray(ids, dtype=np.int64)[positions]


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(sorted(VARIANTS)),
    steps=st.lists(_STEP, min_size=1, max_size=25),
    query=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4),
)
def test_scores_equal_a_from_scratch_index_after_any_writes_and_deletes(method, steps, query):
    index, live = SegmentedBM25(method), {}
    _apply(index, steps, live)
    _assert_reference_scores(index, method, live, query)


def _apply(index: SegmentedBM25, steps, live: dict[int, list[str]], save_dir=None) -> None:
    """Run ``steps`` on ``index`` and on ``live`` (id -> tokens of the live documents)."""
    next_id = 0
    for kind, payload in steps:
        if kind == "add":
            ids = list(range(next_id, next_id + len(payload)))
            next_id += len(payload)
            index.add(ids, payload)
            live.update(zip(ids, payload))
        elif kind == "delete":
            keys = sorted(live)
            gone = {keys[i % len(keys)] for i in payload} if keys else set()
            index.remove(sorted(gone) + [10_000])  # unknown ids are ignored
            for g in gone:
                del live[g]
        else:
            directory = Path(tempfile.mkdtemp(dir=save_dir))
            index.adopt(directory, index.save(directory))
        assert index.n_docs == len(live)


def _assert_reference_scores(index: SegmentedBM25, method: str, live: dict[int, list[str]], query) -> None:
    if not live:
        assert index.search(query, 5)[1].size == 0
        return
    want_scores, want_ids = _reference(method, live, query)
    got_scores, got_ids = index.search(query, k=10_000)
    assert got_ids.tolist() == want_ids.tolist()
    np.testing.assert_allclose(got_scores, want_scores, rtol=0, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    method=st.sampled_from(sorted(VARIANTS)),
    steps=st.lists(_STEP_OR_SAVE, min_size=1, max_size=20),
    query=st.lists(st.sampled_from(_WORDS + ["unseen"]), min_size=1, max_size=4),
    sparse=st.booleans(),
)
def test_mapped_and_spilled_index_scores_equal_a_from_scratch_index(method, steps, query, sparse):
    """Everything spilled and mapped at once (thresholds 0), saved and adopted in between, queries scored
    through the dense or the sparse accumulator: still the reference scores, and no stray spill files."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(segments, "SPILL_BYTES", 0),
        mock.patch.object(segments, "SPILL_TERMS", 1),
        mock.patch.object(segments, "SPARSE_FRACTION", 0 if sparse else 10**9),
    ):
        spill = Path(tmp) / "spill"
        spill.mkdir()
        index, live = SegmentedBM25(method, spill_to=lambda: spill), {}
        _apply(index, steps, live, save_dir=tmp)
        in_use = {f for seg in index.segments for f in seg.files()} | set(index.vocab.files())
        assert set(spill.iterdir()) <= in_use  # merged-away segments and old vocabularies are deleted
        _assert_reference_scores(index, method, live, query)


def test_okapi_matches_rank_bm25_after_deletes():
    rank_bm25 = pytest.importorskip("rank_bm25")
    docs = [["red", "apple"], ["green", "apple", "pie"], ["red", "wine"], ["blue", "sky"], ["apple", "red", "red"]]
    index = SegmentedBM25("okapi")
    for i, d in enumerate(docs):
        index.add([i], [d])
    index.add([99], [["apple", "apple"]])
    index.remove([99, 3])
    kept = [docs[i] for i in (0, 1, 2, 4)]
    oracle = rank_bm25.BM25Okapi(kept).get_scores(["red", "apple"])
    scores, ids = index.search(["red", "apple"], k=10)
    got = dict(zip(ids.tolist(), scores.tolist()))
    for i, want in zip((0, 1, 2, 4), oracle):
        assert got.get(i, 0.0) == pytest.approx(want, abs=1e-6)


def test_segments_merge_in_tiers_and_persist(tmp_path):
    index = SegmentedBM25("lucene")
    for i in range(200):
        index.add([i], [[_WORDS[i % 12], _WORDS[(i * 5) % 12]]])
    assert len(index.segments) < 12  # tiers of 4: O(log N) segments, not one per write
    index.remove(list(range(0, 200, 3)))
    want = index.search(["w1", "w5"], k=50)
    manifest = index.save(tmp_path)
    again = SegmentedBM25("lucene")
    again.load(tmp_path, manifest)
    got = again.search(["w1", "w5"], k=50)
    assert got[1].tolist() == want[1].tolist()
    np.testing.assert_allclose(got[0], want[0])
    assert isinstance(again.segments[0].post_docs, np.memmap)  # saved segments are memory-mapped
    assert isinstance(again.vocab._terms, np.memmap)  # ... and so is the vocabulary
    index.adopt(tmp_path, manifest)  # the index that saved maps its files too
    assert all(isinstance(seg.post_tf, np.memmap) for seg in index.segments)
    assert index.vocab.n_new == 0
    assert index.search(["w1", "w5"], k=50)[1].tolist() == want[1].tolist()
    again.add([500], [["w1"]])  # adding on top of mapped segments works
    again.compact()
    assert len(again.segments) == 1 and again.n_docs == 200 - 67 + 1
    with pytest.raises(ValueError, match="duplicate"):
        again.add([7, 7], [["a"], ["b"]])
