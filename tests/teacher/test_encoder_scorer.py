"""EncoderScorer: a second encoder's inner products as the teacher, embeddings cached; is_encoder_model."""

from __future__ import annotations

import numpy as np
import pytest

from spart.data import Passage
from spart.teacher import EncoderScorer, is_encoder_model


class CountingEncoder:
    fingerprint = "counting"

    def __init__(self):
        self.queries, self.passages = 0, 0

    def encode_queries(self, texts, batch_size=64):
        self.queries += len(texts)
        return np.array([[1.0, float(len(t))] for t in texts], dtype=np.float32)

    def encode_passages(self, texts, titles, batch_size=64):
        self.passages += len(texts)
        return np.array([[float(t.count("x")), float(len(ti))] for t, ti in zip(texts, titles)], dtype=np.float32)


def test_scores_are_the_real_encoders_inner_products(tiny_encoder_dir):
    from spart.encoders import DualEncoder

    scorer = EncoderScorer(str(tiny_encoder_dir), device="cpu", precision="fp32", batch_size=2)
    rows = [
        [Passage("a", "Paris is in France.", "Paris"), Passage("b", "Bananas are fruit.", "Banana")],
        [Passage("c", "Python is a language.", "Python"), Passage("a", "Paris is in France.", "Paris")],
    ]
    got = scorer.score_topk(["where is paris?", "what is python?"], rows)
    encoder = DualEncoder.load(tiny_encoder_dir, device="cpu", precision="fp32")
    q = encoder.encode_queries(["where is paris?", "what is python?"])
    for i, row in enumerate(rows):
        p = encoder.encode_passages([x.text for x in row], [x.title for x in row])
        np.testing.assert_allclose(got[i], p @ q[i], rtol=1e-4, atol=1e-5)
    assert got.shape == (2, 2) and got.dtype == np.float32
    assert scorer.fingerprint == f"encoder:{encoder.fingerprint}"
    np.testing.assert_allclose(scorer.score("where is paris?", rows[0]), got[0], rtol=1e-6)


def test_each_question_and_passage_is_embedded_once():
    encoder = CountingEncoder()
    scorer = EncoderScorer.from_encoder(encoder)
    a, b, c = Passage("a", "x", "t"), Passage("b", "xx", "t"), Passage("c", "xxx", "t")
    first = scorer.score_topk(["q", "q"], [[a, b], [b, c]])
    again = scorer.score_topk(["q", "r"], [[c, a], [a, b]])
    assert (encoder.queries, encoder.passages) == (2, 3)
    assert scorer.stats == {"pairs": 8, "questions_embedded": 2, "passages_embedded": 3}
    assert first[0].tolist() == [2.0, 3.0] and again[0].tolist() == [4.0, 2.0]  # count("x") + len(title)


def test_passages_without_an_id_are_told_apart_by_their_text():
    scorer = EncoderScorer.from_encoder(CountingEncoder())
    scores = scorer.score_topk(["q"], [[{"text": "x"}, {"text": "xxx"}, {"text": "x", "title": "longer"}]])
    assert scores[0].tolist() == [1.0, 3.0, 7.0]  # 1 * count("x") + len("q") * len(title)


def test_bad_input_is_refused():
    scorer = EncoderScorer.from_encoder(CountingEncoder())
    with pytest.raises(ValueError, match="2 questions but 1 passage lists"):
        scorer.score_topk(["q", "r"], [[Passage("a", "x")]])
    with pytest.raises(ValueError, match="same number of passages"):
        scorer.score_topk(["q", "r"], [[Passage("a", "x")], [Passage("a", "x"), Passage("b", "y")]])
    with pytest.raises(ValueError, match="batch_size"):
        EncoderScorer("model", batch_size=0)
    assert scorer.score("q", []).shape == (0,)


def test_is_encoder_model_tells_encoders_from_lms(tiny_encoder_dir, tiny_causal_dir, tmp_path):
    assert is_encoder_model(tiny_encoder_dir) and is_encoder_model(str(tiny_encoder_dir))
    assert not is_encoder_model(tiny_causal_dir)  # an LM directory: config.json, no sentence-transformers files
    assert not is_encoder_model(None)  # the packaged SmolLM2
    assert not is_encoder_model(tmp_path / "missing")
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert not is_encoder_model(tmp_path / "m.gguf")
