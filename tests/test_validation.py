"""spart.validation: the one top_k / count check, and its message."""

from __future__ import annotations

import numpy as np
import pytest

from spart.validation import check_positive_int, check_top_k


def test_accepts_positive_integers():
    assert check_top_k(3) == 3
    assert type(check_top_k(np.int64(5))) is int
    assert check_top_k(None, allow_none=True) is None
    assert check_positive_int(1, "batch_size") == 1


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (0, {}, "top_k must be a positive integer, got 0"),
        (-2, {"name": "depth"}, "depth must be a positive integer, got -2"),
        (True, {}, "top_k must be a positive integer, got True"),
        (2.0, {}, "top_k must be a positive integer, got 2.0"),
        ("3", {}, "top_k must be a positive integer, got '3'"),
        (None, {}, "top_k must be a positive integer, got None"),
        (0, {"allow_none": True}, "top_k must be a positive integer or None, got 0"),
    ],
)
def test_message_names_the_parameter_and_the_value(value, kwargs, message):
    with pytest.raises(ValueError) as info:
        check_top_k(value, **kwargs)
    assert str(info.value) == message


def _store():
    from spart.components.document_stores import FaissDocumentStore

    FaissDocumentStore(embedding_dim=2).bm25_retrieval("q", top_k=0)


def _fusion():
    from spart.fusion import fuse

    fuse([[("a", 1.0)]], top_k=0)


def _fuser():
    from spart.components.fusers import HybridScoreFuser

    HybridScoreFuser(top_k=0)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (_store, "top_k must be a positive integer, got 0"),
        (_fusion, "top_k must be a positive integer or None, got 0"),
        (_fuser, "top_k must be a positive integer or None, got 0"),
    ],
)
def test_components_use_the_same_message(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message
