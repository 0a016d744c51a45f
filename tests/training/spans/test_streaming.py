"""Mining a passage stream: the same documents as mining them directly, whatever the batch size or workers."""

from __future__ import annotations

import pytest

from spart.data import Passage
from spart.training.spans import SpanMiningConfig, iter_documents, mine_documents, mine_spans, select_passages


def _corpus() -> list[Passage]:
    words = ["Eiffel Tower", "River Seine", "Notre Dame", "Latin Quarter"]
    return [
        Passage(id=f"d{d}p{p}", text=f"{words[(d + p) % 4]} and {words[(d * p) % 4]} near gate {d}", title=f"Doc {d}")
        for d in range(8)
        for p in range(2 + d % 3)
    ]


def test_stream_equals_direct_mining_for_any_batch_size_and_workers():
    config = SpanMiningConfig()
    selected = [(key, select_passages(ps, config)) for key, ps in iter_documents(_corpus(), config)]
    direct = mine_documents([(key, [(p.id, p.text) for p in ps]) for key, ps in selected if ps is not None], config)
    assert sum(len(d.clusters) for d in direct) > 0
    for batch_passages, workers in [(1, 1), (5, 1), (1000, 1), (3, 2)]:
        assert list(mine_spans(_corpus(), config, workers=workers, batch_passages=batch_passages)) == direct
    with pytest.raises(ValueError, match="batch_passages"):
        list(mine_spans(_corpus(), batch_passages=0))
