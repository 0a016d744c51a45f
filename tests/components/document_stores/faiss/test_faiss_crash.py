"""kill -9 of a writer at random moments: returned writes survive, none is half-applied, indexes equal a rebuild.

A few trials here; ``benchmarks/bench_store_crash.py`` runs 50+.
"""

from __future__ import annotations

import pytest

from spart.components.document_stores.faiss.crash_check import run_trial


@pytest.mark.crash
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_store_survives_sigkill_of_its_writer(tmp_path, seed):
    result = run_trial(tmp_path / "store", seed=seed, max_delay_s=1.5)
    assert result.done > 0 or result.in_flight  # the kill landed while the writer was working
