"""DenseIndex and merge_topk: exactness, ids, training, removal, persistence, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest

from spart.index import DenseIndex, merge_topk
from spart.index import dense as dense_module


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute_force(x, ids, q, k):
    scores = q @ x.T
    order = np.lexsort((np.broadcast_to(ids, scores.shape), -scores.astype(np.float64)), axis=-1)[:, :k]
    return np.take_along_axis(scores, order, 1), ids[order]


def test_flat_search_matches_brute_force():
    rng = np.random.default_rng(0)
    x, q = _unit(rng, 500, 16), _unit(rng, 7, 16)
    ids = rng.permutation(10_000)[:500].astype(np.int64)
    index = DenseIndex(16, "Flat")
    index.add(x, ids)
    scores, got = index.search(q, 10)
    want_s, want_ids = _brute_force(x, ids, q, 10)
    np.testing.assert_array_equal(got, want_ids)
    np.testing.assert_allclose(scores, want_s, rtol=1e-5, atol=1e-6)
    assert scores.dtype == np.float32 and got.dtype == np.int64
    assert len(index) == 500


def test_default_ids_are_consecutive_and_single_query_accepted():
    index = DenseIndex(3)
    assert list(index.add(np.eye(3))) == [0, 1, 2]
    assert list(index.add(np.eye(3)[:1])) == [3]
    scores, ids = index.search(np.array([0.0, 1.0, 0.0]), 1)
    assert ids.tolist() == [[1]] and scores.tolist() == [[1.0]]


def test_padding_when_k_exceeds_size():
    index = DenseIndex(2)
    index.add(np.array([[1.0, 0.0], [0.5, 0.0]]), ids=[7, 9])
    scores, ids = index.search(np.array([[1.0, 0.0]]), 4)
    assert ids.tolist() == [[7, 9, -1, -1]]
    assert scores[0, :2].tolist() == [1.0, 0.5] and np.isneginf(scores[0, 2:]).all()
    empty = DenseIndex(2)
    s, i = empty.search(np.ones((2, 2)), 3)
    assert (i == -1).all() and np.isneginf(s).all()


def test_ties_are_ordered_by_id():
    index = DenseIndex(2)
    index.add(np.array([[1.0, 0.0]] * 4), ids=[30, 10, 20, 40])
    _, ids = index.search(np.array([[1.0, 0.0]]), 4)
    assert ids.tolist() == [[10, 20, 30, 40]]


@pytest.mark.parametrize("n_shards", [2, 3])
def test_sharded_search_plus_merge_equals_single_search(n_shards):
    rng = np.random.default_rng(1)
    # Small integer vectors: inner products are exact, and many scores tie.
    x = rng.integers(-2, 3, size=(300, 8)).astype(np.float32)
    q = rng.integers(-2, 3, size=(25, 8)).astype(np.float32)
    ids = np.arange(300, dtype=np.int64)
    single = DenseIndex(8)
    single.add(x, ids)
    k = 20
    want_s, want_i = single.search(q, k)
    shard_s, shard_i = [], []
    for shard in range(n_shards):
        part = DenseIndex(8)
        part.add(x[shard::n_shards], ids[shard::n_shards])  # round-robin, as ranks own strided slices
        s, i = part.search(q, k)
        shard_s.append(s)
        shard_i.append(i)
    got_s, got_i = merge_topk(shard_s, shard_i, k)
    np.testing.assert_array_equal(got_s, want_s)
    np.testing.assert_array_equal(got_i, want_i)
    # ties really occur in this data, so the tie rule was exercised
    assert any(len(np.unique(row)) < k for row in want_s)


def test_merge_topk_padding_and_uneven_shards():
    s1 = np.array([[0.9, 0.1, -np.inf]], dtype=np.float32)
    i1 = np.array([[4, 2, -1]])
    s2 = np.array([[0.5]], dtype=np.float32)
    i2 = np.array([[8]])
    scores, ids = merge_topk([s1, s2], [i1, i2], 5)
    assert ids.tolist() == [[4, 8, 2, -1, -1]]
    assert scores[0, :3].tolist() == pytest.approx([0.9, 0.5, 0.1]) and np.isneginf(scores[0, 3:]).all()
    # a padded slot carrying a garbage score must still sort last
    scores, ids = merge_topk([np.array([[5.0, 0.2]])], [np.array([[-1, 3]])], 2)
    assert ids.tolist() == [[3, -1]]


def test_merge_topk_bad_input():
    with pytest.raises(ValueError, match="k must be > 0"):
        merge_topk([np.zeros((1, 1))], [np.zeros((1, 1))], 0)
    with pytest.raises(ValueError, match="shard 1"):
        merge_topk([np.zeros((1, 2)), np.zeros((2, 2))], [np.zeros((1, 2)), np.zeros((2, 2))], 2)
    with pytest.raises(ValueError, match="one id array per score array"):
        merge_topk([np.zeros((1, 2))], [], 2)


def test_dimension_and_value_errors():
    index = DenseIndex(4)
    with pytest.raises(ValueError, match="dimension 3, but the index has dimension 4"):
        index.add(np.zeros((2, 3)))
    index.add(np.ones((2, 4)))
    with pytest.raises(ValueError, match="dimension 5"):
        index.search(np.zeros((1, 5)), 1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(np.zeros(4), 0)
    with pytest.raises(ValueError, match="NaN"):
        index.add(np.full((1, 4), np.nan))
    with pytest.raises(ValueError, match="2 vectors but 1 ids"):
        index.add(np.ones((2, 4)), ids=[1])
    with pytest.raises(ValueError, match="invalid FAISS factory"):
        DenseIndex(4, "NotAnIndex")
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        DenseIndex(0)
    with pytest.raises(ValueError, match="drop the IDMap prefix"):
        DenseIndex(4, "IDMap,Flat")


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF4,Flat", "PQ2x4"])
def test_remove(factory):
    rng = np.random.default_rng(2)
    x = _unit(rng, 200, 8)
    index = DenseIndex(8, factory, nprobe=4, ef_search=64)
    index.add(x, np.arange(100, 300))
    assert index.remove([100, 101, 5]) == 2
    assert len(index) == 198
    _, ids = index.search(x[:2], 198)
    assert 100 not in ids and 101 not in ids
    assert set(ids[0].tolist()) - {-1} <= set(range(102, 300))
    # remaining vectors are still found exactly where the index is exact for them
    if factory in ("Flat", "HNSW16", "IVF4,Flat"):
        _, top = index.search(x[2:5], 1)
        assert top[:, 0].tolist() == [102, 103, 104]


def test_training_needs_enough_vectors():
    rng = np.random.default_rng(3)
    index = DenseIndex(8, "IVF16,Flat")
    assert not index.is_trained
    with pytest.raises(ValueError, match="could not be trained on 5 vectors"):
        index.add(_unit(rng, 5, 8))
    assert len(index) == 0
    index.add(_unit(rng, 400, 8))
    assert index.is_trained and len(index) == 400


def test_save_load_roundtrip_and_errors(tmp_path):
    rng = np.random.default_rng(4)
    x = _unit(rng, 50, 8)
    index = DenseIndex(8, "HNSW16", ef_search=40)
    index.add(x, np.arange(1000, 1050))
    path = tmp_path / "sub" / "dense.index"
    index.save(path)
    loaded = DenseIndex.load(path)
    assert (loaded.dim, loaded.factory, loaded.ef_search, len(loaded)) == (8, "HNSW16", 40, 50)
    np.testing.assert_array_equal(loaded.search(x[:3], 5)[1], index.search(x[:3], 5)[1])
    assert list(loaded.add(x[:1])) == [1050]  # id counter survives
    assert [p.name for p in path.parent.iterdir()] == ["dense.index"]  # no temp files left behind
    with pytest.raises(FileNotFoundError, match="not found"):
        DenseIndex.load(tmp_path / "missing.index")
    (tmp_path / "bad.index").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a spart dense index"):
        DenseIndex.load(tmp_path / "bad.index")
    data = path.read_bytes()
    (tmp_path / "truncated.index").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt"):
        DenseIndex.load(tmp_path / "truncated.index")


def test_hnsw_removal_uses_tombstones_until_purge(tmp_path):
    rng = np.random.default_rng(5)
    x = _unit(rng, 100, 8)
    index = DenseIndex(8, "HNSW16", ef_search=200)
    index.add(x, np.arange(100))
    assert index.remove([3, 4, 4, 999]) == 2
    assert len(index) == 98 and index._index.ntotal == 100  # hidden, not yet rebuilt
    _, ids = index.search(x, 100)
    assert not np.isin(ids, [3, 4]).any()
    assert (ids != -1).sum(axis=1).max() <= 98
    # tombstones survive save/load
    index.save(tmp_path / "h.index")
    loaded = DenseIndex.load(tmp_path / "h.index")
    assert len(loaded) == 98 and not np.isin(loaded.search(x[:10], 5)[1], [3, 4]).any()
    # re-adding a removed id purges its old vector first, so the new vector is what is found
    loaded.add(-x[3:4], ids=[3])
    assert loaded._index.ntotal == 99 and len(loaded) == 99
    assert loaded.search(-x[3], 1)[1].tolist() == [[3]]
    # past 20% deleted, the graph is rebuilt without them
    assert index.remove(np.arange(10, 40)) == 30
    assert index._index.ntotal == len(index) == 68 and len(index._deleted) == 0
    _, top = index.search(x[50:53], 1)
    assert top[:, 0].tolist() == [50, 51, 52]


@pytest.mark.parametrize("factory", ["Flat", "HNSW8", "IVF8,Flat", "IVF8,PQ4", "PQ4"])
def test_write_file_read_file_maps_and_changes_without_touching_the_file(tmp_path, factory):
    x = np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)
    index = DenseIndex(16, factory, nprobe=8)
    index.add(x)
    header = index.write_file(tmp_path / "i.faiss")
    mapped = DenseIndex.read_file(tmp_path / "i.faiss", header)
    assert mapped._mapped == (not factory.startswith("IVF"))
    np.testing.assert_array_equal(mapped.search(x[:4], 5)[1], index.search(x[:4], 5)[1])
    # Flat / HNSW take changes into a delta and tombstones; PQ is copied first (FAISS aborts on a mapped array)
    assert mapped.remove(np.arange(3)) == 3
    assert mapped._mapped == (factory in ("Flat", "HNSW8"))
    mapped.add(x[:2], np.asarray([5000, 5001]))
    assert len(mapped) == 1999
    assert len(DenseIndex.read_file(tmp_path / "i.faiss", header)) == 2000  # the file is unchanged
    for change in ("clear", "reset"):
        fresh = DenseIndex.read_file(tmp_path / "i.faiss", header)
        getattr(fresh, change)()
        assert len(fresh) == 0 and fresh.search(x[:1], 3)[1].tolist() == [[-1, -1, -1]]
    with pytest.raises(ValueError, match="not a readable FAISS index"):
        (tmp_path / "bad.faiss").write_bytes(b"junk")
        DenseIndex.read_file(tmp_path / "bad.faiss", header)


@pytest.mark.parametrize("factory", ["Flat", "HNSW8", "IVF8,Flat", "PQ4"])
def test_write_file_with_remap_maps_flat_and_hnsw_vectors(tmp_path, factory):
    x = np.random.default_rng(2).standard_normal((600, 16)).astype(np.float32)
    index = DenseIndex(16, factory, nprobe=8)
    index.add(x)
    want = index.search(x[:5], 4)
    index.write_file(tmp_path / "i.faiss", remap=True)
    assert index._mapped == (factory in ("Flat", "HNSW8"))
    (tmp_path / "i.faiss").unlink()  # the mapping (and any later copy) is kept alive by the open handle
    for got, expected in zip(index.search(x[:5], 4), want):
        np.testing.assert_array_equal(got, expected)
    index.add(x[:1], np.asarray([7000]))
    index.to_bytes()
    assert len(index) == 601


def _reference_search(live: dict, q: np.ndarray, k: int) -> np.ndarray:
    ids = np.asarray(sorted(live), dtype=np.int64)
    return _brute_force(np.stack([live[i] for i in ids]), ids, q, k)[1]


@pytest.mark.parametrize("factory", ["Flat", "HNSW16"])
def test_mapped_index_with_delta_and_tombstones_equals_exact_search(tmp_path, factory, monkeypatch):
    # Random adds, removes and re-adds (of removed ids, with new vectors) on a mapped index, written and read
    # back in between: every search equals brute force over the live vectors; nothing is copied into memory
    # until the delta passes its threshold, and then the merged index still equals brute force.
    monkeypatch.setattr(dense_module, "_DELTA_MIN", 40)
    rng = np.random.default_rng(7)
    x = _unit(rng, 400, 8)
    index = DenseIndex(8, factory, ef_search=400)
    index.add(x, np.arange(400))
    live = {i: x[i] for i in range(400)}
    index = DenseIndex.read_file(tmp_path / "a.faiss", index.write_file(tmp_path / "a.faiss"))
    queries = _unit(rng, 12, 8)
    next_id, path_no = 400, 0
    for round_no in range(6):
        for _ in range(5):
            if rng.random() < 0.5:
                drop = rng.choice(sorted(live), size=4, replace=False)
                assert index.remove(np.append(drop, 10_000)) == 4
                for i in drop:
                    del live[int(i)]
            else:
                ids = np.asarray([next_id, int(rng.integers(0, 400))])  # a new id, maybe a removed one re-added
                if ids[1] in live:
                    ids = ids[:1]
                v = _unit(rng, len(ids), 8)
                index.add(v, ids)
                live.update({int(i): row for i, row in zip(ids, v)})
                next_id += 1
        assert index._mapped and len(index) == len(live)
        np.testing.assert_array_equal(index.search(queries, 10)[1], _reference_search(live, queries, 10))
        path_no += 1
        path = tmp_path / f"{path_no}.faiss"
        header = index.write_file(path)
        assert os.stat(path).st_ino == os.stat(tmp_path / "a.faiss").st_ino  # linked, not copied
        assert header.get("delta") == path.name + ".delta" and len(header["deleted"]) == len(index._deleted)
        in_memory = DenseIndex.read_file(path, header, mmap=False)  # delta and tombstones folded in
        assert not in_memory._mapped and in_memory._delta is None and len(in_memory) == len(live)
        index = DenseIndex.read_file(path, header)
        for each in (index, in_memory):
            np.testing.assert_array_equal(each.search(queries, 10)[1], _reference_search(live, queries, 10))
        assert round_no < 5 or index._delta_size > 0
    # past the threshold the delta is merged into an in-memory index, which searches the same
    v = _unit(rng, 50, 8)
    index.add(v, np.arange(20_000, 20_050))
    live.update({20_000 + i: row for i, row in enumerate(v)})
    assert not index._mapped and index._delta is None and len(index) == len(live)
    np.testing.assert_array_equal(index.search(queries, 10)[1], _reference_search(live, queries, 10))
    # an unmapped write folds nothing: one file, no delta
    header = index.write_file(tmp_path / "merged.faiss")
    assert "delta" not in header and not (tmp_path / "merged.faiss.delta").exists()
    loaded = DenseIndex.read_file(tmp_path / "merged.faiss", header, mmap=False)
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], _reference_search(live, queries, 10))


@pytest.mark.parametrize("factory", ["Flat", "HNSW8"])
def test_mapped_file_is_used_even_after_the_path_was_replaced(tmp_path, factory):
    # A newer checkpoint may replace the file (os.replace) while an older store still maps it: what this index
    # writes or copies into memory later must be the mapped index, not whatever the path holds now.
    x = _unit(np.random.default_rng(1), 500, 8)
    old, new = DenseIndex(8, factory), DenseIndex(8, factory)
    old.add(x[:300])
    new.add(x[300:])
    header = old.write_file(tmp_path / "i.faiss")
    mapped = DenseIndex.read_file(tmp_path / "i.faiss", header)
    assert mapped._mapped and mapped._source is not None
    new.write_file(tmp_path / "i.faiss")  # atomic replace of the path
    mapped.add(x[:1], np.asarray([9999]))
    written = mapped.write_file(tmp_path / "copy.faiss")  # not a link to the replaced path: a copy of the mapped file
    assert os.stat(tmp_path / "copy.faiss").st_ino != os.stat(tmp_path / "i.faiss").st_ino
    reread = DenseIndex.read_file(tmp_path / "copy.faiss", written)
    mapped.to_bytes()  # merges into memory, from the kept handle
    assert not mapped._mapped and mapped._source is None  # the kept file handle is released
    for index in (mapped, reread):
        assert len(index) == 301
        np.testing.assert_array_equal(index.search(x[:5], 1)[1][:, 0], np.arange(5))


def test_search_params_change_on_a_built_index():
    vectors = _unit(np.random.default_rng(3), 600, 8)
    ivf = DenseIndex(8, "IVF16,Flat")
    ivf.add(vectors)
    exact = DenseIndex(8, "Flat")
    exact.add(vectors)
    want = exact.search(vectors[:20], 5)[1]
    ivf.set_search_params(nprobe=16)  # every list probed: exact
    assert ivf.nprobe == 16 and (ivf.search(vectors[:20], 5)[1] == want).all()
    hnsw = DenseIndex(8, "HNSW8")
    hnsw.add(vectors)
    hnsw.set_search_params(ef_search=77)
    assert hnsw._base.hnsw.efSearch == 77 and hnsw.header()["ef_search"] == 77
