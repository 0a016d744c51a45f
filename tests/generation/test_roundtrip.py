"""source_ranks: exact rank of each question's source passage, ties counted against it."""

from __future__ import annotations

import numpy as np
import pytest

from spart.generation import source_ranks


def test_ranks_equal_a_naive_sort():
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(37, 8)).astype(np.float32), rng.normal(size=(50, 8)).astype(np.float32)
    rows = rng.integers(0, 50, size=37)
    ranks = source_ranks(q, p, rows, batch_size=5)
    for i in range(37):
        order = list(np.argsort(-(q[i] @ p.T), kind="stable"))
        assert ranks[i] == order.index(rows[i]) + 1


def test_ties_count_against_the_source():
    q = np.array([[1.0, 0.0]], dtype=np.float32)
    p = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert source_ranks(q, p, [0]).tolist() == [2]
    assert source_ranks(q, p, [2]).tolist() == [3]


def test_shape_errors():
    q, p = np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="shapes"):
        source_ranks(q, np.zeros((3, 5), np.float32), [0, 1])
    with pytest.raises(ValueError, match="source rows"):
        source_ranks(q, p, [0])
    with pytest.raises(ValueError, match="outside"):
        source_ranks(q, p, [0, 3])
