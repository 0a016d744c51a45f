"""The encoded-corpus cache: hits skip encoding, changes miss, interrupted runs resume from whole chunks."""

from __future__ import annotations

import numpy as np
import pytest

from spart.data import Passage
from spart.evaluation.cache import cache_root, corpus_fingerprint, encode_corpus_cached


class CountingEncoder:
    """Deterministic fake encoder: vector = (len(text), len(title), hash bucket); counts passages encoded."""

    def __init__(self, fingerprint="m1", fail_after=None):
        self.passage_fingerprint = fingerprint
        self.encoded = 0
        self.fail_after = fail_after

    def encode_passages(self, texts, titles=None, batch_size=32, show_progress=False):
        if self.fail_after is not None and self.encoded + len(texts) > self.fail_after:
            raise RuntimeError("simulated crash")
        self.encoded += len(texts)
        return np.array([[len(t), len(ti), sum(map(ord, t)) % 97] for t, ti in zip(texts, titles)], dtype=np.float32)


def corpus(n):
    return [Passage(f"p{i}", "x" * (i + 1), f"t{i % 3}") for i in range(n)]


def test_cache_hit_skips_encoding(tmp_path):
    passages = corpus(10)
    first = CountingEncoder()
    a = encode_corpus_cached(first, passages, tmp_path, chunk_size=4, show_progress=False)
    assert first.encoded == 10 and a.shape == (10, 3)
    assert a[3].tolist() == [4.0, 2.0, float((ord("x") * 4) % 97)]
    second = CountingEncoder()
    b = encode_corpus_cached(second, passages, tmp_path, chunk_size=4, show_progress=False)
    assert second.encoded == 0
    np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "embeddings" / "m1" / corpus_fingerprint(passages)[0] / "partial").exists()


def test_changed_model_or_corpus_misses(tmp_path):
    passages = corpus(5)
    encode_corpus_cached(CountingEncoder("m1"), passages, tmp_path, show_progress=False)
    other_model = CountingEncoder("m2")
    encode_corpus_cached(other_model, passages, tmp_path, show_progress=False)
    assert other_model.encoded == 5
    edited = passages[:4] + [Passage("p4", "changed", "t1")]
    same_model = CountingEncoder("m1")
    encode_corpus_cached(same_model, edited, tmp_path, show_progress=False)
    assert same_model.encoded == 5


def test_title_changes_fingerprint():
    a = corpus_fingerprint([Passage("1", "text", "A")])[0]
    b = corpus_fingerprint([Passage("1", "text", "B")])[0]
    c = corpus_fingerprint([Passage("1", "textA", "")])[0]
    assert len({a, b, c}) == 3


def test_interrupted_run_resumes_from_whole_chunks(tmp_path):
    passages = corpus(10)
    crashing = CountingEncoder(fail_after=9)
    with pytest.raises(RuntimeError):
        encode_corpus_cached(crashing, passages, tmp_path, chunk_size=4, show_progress=False)
    assert crashing.encoded == 8  # two whole chunks were saved
    resumed = CountingEncoder()
    out = encode_corpus_cached(resumed, passages, tmp_path, chunk_size=4, show_progress=False)
    assert resumed.encoded == 2
    fresh = encode_corpus_cached(CountingEncoder("m9"), passages, tmp_path, chunk_size=4, show_progress=False)
    np.testing.assert_array_equal(out, fresh)


def test_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SPART_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert cache_root(tmp_path / "x") == tmp_path / "x"


def test_empty_corpus_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="empty corpus"):
        encode_corpus_cached(CountingEncoder(), [], tmp_path, show_progress=False)


def test_ensure_store_without_progress_prints_no_bar(tmp_path, beir_dir, tiny_bert_dir, capsys):
    from spart.evaluation.datasets import load_dataset
    from spart.evaluation.stores import ensure_store

    dataset = load_dataset(beir_dir, "test")
    store = ensure_store(dataset, model=str(tiny_bert_dir), cache_dir=tmp_path / "cache", progress=False)
    assert (store / "spart-build.json").is_file()
    captured = capsys.readouterr()
    assert "encoding" not in captured.err + captured.out
