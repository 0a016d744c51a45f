"""Teacher test fixtures: tiny seq2seq and GPT-2 teachers (builders in tests/_tiny_models.py), sample passages.

The tiny causal Llama teacher, ``tiny_causal_dir``, is shared by several packages: tests/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _tiny_models import build_tiny_gpt2, build_tiny_t5


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory, minilm_dir) -> Path:
    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5"), minilm_dir)


@pytest.fixture
def passages():
    from spart.data.readers import Passage

    return [
        Passage("p1", "Paris is the capital and most populous city of France.", "Paris"),
        Passage("p2", "A banana is an elongated, edible fruit of large herbaceous flowering plants.", "Banana"),
        Passage(
            "p3",
            "Python is a high-level, general-purpose programming language created by Guido van "
            "Rossum. Its design emphasises code readability with significant indentation.",
            "Python",
        ),
        Passage("p4", "Short text.", ""),
    ]


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, minilm_dir) -> Path:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"), minilm_dir)
