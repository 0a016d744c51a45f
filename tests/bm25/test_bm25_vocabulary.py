"""Vocabulary: term ids stay stable through saves and loads; the saved part is memory-mapped."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spart.bm25.vocabulary import MAX_WIDTH, Vocabulary

LONG = "x" * (MAX_WIDTH + 5)
ODD = ["émile", "日本語", LONG, "nul\0", "a", "zz"]


def test_ids_follow_first_appearance_and_lookup_marks_unknown_terms():
    vocab = Vocabulary()
    assert vocab.add(["fox", "dog", "fox", "cat"]).tolist() == [0, 1, 0, 2]
    assert vocab.lookup(["cat", "cow", "fox"]).tolist() == [2, -1, 0]
    assert len(vocab) == 3


def test_saved_vocabulary_is_mapped_and_keeps_every_id(tmp_path):
    vocab = Vocabulary()
    ids = vocab.add(["b", "a", *ODD, "c"])
    vocab.count(ids, +1)
    entry = vocab.save(tmp_path)
    loaded = Vocabulary.load(tmp_path, entry)
    assert isinstance(loaded._terms, np.memmap) and isinstance(loaded._df_saved, np.memmap)
    assert loaded.lookup(["b", "a", *ODD, "c", "nope"]).tolist() == ids.tolist() + [-1]
    assert loaded.df(ids).tolist() == [1, 2, 1, 1, 1, 1, 2, 1, 1]  # "a" occurs twice
    # new terms continue the ids; frequencies change copy-on-write, never in the saved file
    more = loaded.add(["a", "new", LONG + "y"])
    assert more.tolist() == [1, 8, 9]
    loaded.count(more, +1)
    assert np.load(tmp_path / entry["df"]).tolist() == [1, 2, 1, 1, 1, 1, 1, 1]
    again_dir = tmp_path / "again"
    again_dir.mkdir()
    again = Vocabulary.load(again_dir, loaded.save(again_dir))
    assert again.lookup(["a", "new", LONG + "y", *ODD]).tolist() == more.tolist() + ids[2:8].tolist()
    assert again.df(more).tolist() == [3, 1, 1]
    assert again.all_df().sum() == loaded.all_df().sum() == 12


def test_unchanged_vocabulary_is_hard_linked_and_adopt_maps_it(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    vocab = Vocabulary()
    vocab.count(vocab.add(["red", "apple"]), +1)
    vocab.adopt(first, vocab.save(first))
    assert vocab.n_new == 0 and isinstance(vocab._terms, np.memmap)
    entry = vocab.save(second)
    assert entry["vocab"] == vocab.uid
    name = f"vocab-{vocab.uid}.terms.npy"
    assert (second / name).stat().st_ino == (first / name).stat().st_ino
    assert Vocabulary.load(second, entry).lookup(["apple"]).tolist() == [1]


def test_corrupt_files_and_legacy_term_lists(tmp_path):
    vocab = Vocabulary()
    vocab.count(vocab.add(["a", "b"]), +1)
    entry = vocab.save(tmp_path)
    (tmp_path / entry["df"]).write_bytes(b"broken")
    with pytest.raises(ValueError, match="corrupt"):
        Vocabulary.load(tmp_path, entry)
    np.save(tmp_path / entry["df"], np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match="2 terms but 5 df entries"):
        Vocabulary.load(tmp_path, entry)
    legacy = Vocabulary.from_terms(json.loads('["a", "b"]'), np.array([3, 4]))
    assert legacy.lookup(["b"]).tolist() == [1] and legacy.df(np.array([0, 1])).tolist() == [3, 4]
    with pytest.raises(ValueError, match="distinct terms"):
        Vocabulary.from_terms(["a"], np.array([1, 2]))
