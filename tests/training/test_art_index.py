"""ART's sharded evidence index: 2 gloo ranks give exactly the single-process top-K; a dead rank is an error."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from _dist_helpers import init_gloo, spawn

from spart.index.dense import DenseIndex
from spart.training.art_data import ShardedEvidenceIndex, shard_rows
from spart.training.distributed import CollectiveError

N, DIM, K = 103, 16, 7
QUERY_COUNTS = (3, 5)  # ranks hold different numbers of questions
LOOKUPS = (np.array([[0, 102], [51, 52]]), np.array([[60, 10, 101]]))  # rows 0..51 on rank 0, 52..102 on rank 1


def corpus() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    # Exact duplicates on both sides of the shard boundary (row 51/52): ties must break by the smaller id
    # whichever shard holds it.
    vectors[60] = vectors[10]
    vectors[90] = vectors[40]
    queries = rng.standard_normal((sum(QUERY_COUNTS), DIM)).astype(np.float32)
    queries[0] = vectors[10] * 3  # its top-1 is a tie between rows 10 and 60
    queries[4] = vectors[40] * 3
    return vectors, queries


def test_shard_rows_partition_the_corpus():
    parts = [shard_rows(N, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate(parts), np.arange(N))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError):
        shard_rows(N, 3, 3)


def test_single_process_search_equals_dense_index():
    vectors, queries = corpus()
    index = ShardedEvidenceIndex(N, DIM)
    index.set_embeddings(vectors, step=0)
    reference = DenseIndex(DIM)
    reference.add(vectors)
    got, want = index.search(queries, K), reference.search(queries, K)
    assert np.array_equal(got[1], want[1]) and np.allclose(got[0], want[0])
    with pytest.raises(ValueError, match=r"\(n, 16\)"):
        index.search(queries[:, :3], K)


def test_lookup_returns_the_embeddings_of_global_rows():
    vectors, _ = corpus()
    index = ShardedEvidenceIndex(N, DIM)
    with pytest.raises(RuntimeError, match="empty"):
        index.lookup(np.array([0]))
    index.set_embeddings(vectors, step=0)
    rows = np.array([[3, 102, 0], [51, 52, 3]])
    assert np.array_equal(index.lookup(rows), vectors[rows])
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 103\)"):
        index.lookup(np.array([[1, 103]]))


def _sharded_worker(rank, world, rendezvous, out_dir):
    init_gloo(rank, world, rendezvous)
    vectors, queries = corpus()
    index = ShardedEvidenceIndex(N, DIM)
    index.set_embeddings(index.shard_of(vectors), step=0)
    start = sum(QUERY_COUNTS[:rank])
    scores, rows = index.search(torch.from_numpy(queries[start : start + QUERY_COUNTS[rank]]), K)
    full = index.gather_embeddings()
    # each rank asks for rows of both shards (and a different number of them)
    wanted = LOOKUPS[rank]
    np.savez(
        f"{out_dir}/r{rank}.npz",
        scores=scores,
        rows=rows,
        looked_up=index.lookup(wanted),
        shard=index.rows,
        full=full if full is not None else np.zeros(0),
    )
    torch.distributed.destroy_process_group()


def test_two_rank_sharded_search_equals_single_process_exact_search(tmp_path):
    spawn(_sharded_worker, 2, tmp_path / "rdzv", tmp_path)
    vectors, queries = corpus()
    exact_scores = queries @ vectors.T
    # Exact top-K by (-score, id): numpy's stable sort on -score keeps ids ascending among ties.
    want_rows = np.argsort(-exact_scores, axis=1, kind="stable")[:, :K]
    r0, r1 = np.load(tmp_path / "r0.npz"), np.load(tmp_path / "r1.npz")
    assert len(r0["shard"]) + len(r1["shard"]) == N and len(r0["shard"]) > 0 and len(r1["shard"]) > 0
    rows = np.concatenate([r0["rows"], r1["rows"]])
    scores = np.concatenate([r0["scores"], r1["scores"]])
    assert np.array_equal(rows, want_rows)
    assert np.allclose(scores, np.take_along_axis(exact_scores, want_rows, 1), atol=1e-5)
    assert rows[0, 0] == 10 and rows[0, 1] == 60  # the cross-shard tie
    assert np.array_equal(r0["full"], vectors)  # checkpoints gather every shard on rank 0
    for rank, r in enumerate((r0, r1)):  # a lookup returns each row's embedding, whichever shard holds it
        assert np.array_equal(r["looked_up"], vectors[LOOKUPS[rank]]), rank


def _dead_rank_worker(rank, world, rendezvous, out_dir):
    import datetime
    import os

    import torch.distributed as dist

    os.environ["RANK"], os.environ["WORLD_SIZE"] = str(rank), str(world)
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=5)
    )
    vectors, queries = corpus()
    index = ShardedEvidenceIndex(N, DIM)
    index.set_embeddings(index.shard_of(vectors), step=0)
    if rank == 1:
        os._exit(0)  # dies without a word, like a killed process
    time.sleep(0.5)
    start = time.perf_counter()
    try:
        index.search(queries[:2], K)
        outcome = "no error"
    except CollectiveError as error:
        outcome = f"CollectiveError: {error}"
    with open(f"{out_dir}/outcome.txt", "w") as handle:
        handle.write(f"{time.perf_counter() - start:.3f}\n{outcome}")
    os._exit(0)  # the group is broken; skip its teardown


def test_dead_rank_ends_the_search_with_a_clear_error_within_the_timeout(tmp_path):
    spawn(_dead_rank_worker, 2, tmp_path / "rdzv", tmp_path)
    elapsed, outcome = (tmp_path / "outcome.txt").read_text().split("\n", 1)
    assert outcome.startswith("CollectiveError"), outcome
    assert "another rank has probably exited" in outcome and "gather query embeddings" in outcome
    assert float(elapsed) < 5 + 10  # the 5 s collective timeout, plus slack for a loaded machine
