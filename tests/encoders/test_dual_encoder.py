"""DualEncoder: loading layouts, pooling, batching, saving in a form sentence-transformers reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spart.encoders import ART_DEFAULTS, SPIDER_DEFAULTS, DualEncoder, DualEncoderConfig

TEXTS = [
    "Hamlet is a tragedy written by William Shakespeare.",
    "Paris",
    "The mitochondrion is the powerhouse of the cell, producing most of its chemical energy supply.",
    "A gyroscope is a device used for measuring or maintaining orientation and angular velocity.",
    "Python is a programming language.",
]
TITLES = ["Hamlet", "", "Mitochondrion", "Gyroscope", None]


def fp32(location, passage_location=None, **kwargs) -> DualEncoder:
    return DualEncoder.load(location, passage_location, device="cpu", precision="fp32", **kwargs)


def one_by_one(encoder: DualEncoder, texts, role="passage", titles=None) -> np.ndarray:
    """Reference: embed each text alone through the training forward path (no batching, no padding)."""
    rows = []
    with torch.no_grad():
        for i, text in enumerate(texts):
            if role == "query":
                inputs = encoder.tokenize_queries([text])
            else:
                inputs = encoder.tokenize_passages([text], None if titles is None else [titles[i]])
            rows.append(encoder.embed(inputs, role)[0].numpy())
    return np.stack(rows)


def test_load_plain_hf_directory_uses_method_defaults(tiny_bert_dir):
    encoder = fp32(tiny_bert_dir, defaults=SPIDER_DEFAULTS)
    assert encoder.config.shared and encoder.config.pooling == "cls" and not encoder.config.normalize
    art = fp32(tiny_bert_dir, defaults=ART_DEFAULTS)
    assert not art.config.shared
    assert art.passage_model is not art.query_model
    # Both towers start from the same weights.
    np.testing.assert_allclose(art.encode_queries(TEXTS[:2]), fp32(tiny_bert_dir).encode_queries(TEXTS[:2]), atol=1e-6)


def test_overrides_win_and_unknown_options_fail(tiny_bert_dir):
    encoder = fp32(tiny_bert_dir, pooling="mean", normalize=True, query_max_length=16)
    assert encoder.config.pooling == "mean" and encoder.config.query_max_length == 16
    q = encoder.encode_queries(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="unknown dual-encoder option"):
        fp32(tiny_bert_dir, poolin="mean")
    with pytest.raises(ValueError, match="pooling must be one of"):
        fp32(tiny_bert_dir, pooling="max")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_batched_sorted_encoding_matches_one_by_one(tiny_bert_dir, pooling):
    encoder = fp32(tiny_bert_dir, pooling=pooling)
    batched = encoder.encode_passages(TEXTS, TITLES, batch_size=2)
    assert batched.shape == (len(TEXTS), encoder.embedding_dim) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, one_by_one(encoder, TEXTS, titles=TITLES), atol=1e-5)
    np.testing.assert_allclose(
        encoder.encode_queries(TEXTS, batch_size=3), one_by_one(encoder, TEXTS, "query"), atol=1e-5
    )


def test_passage_is_title_sep_text_with_zero_segment_ids(tiny_bert_dir):
    encoder = fp32(tiny_bert_dir)
    inputs = encoder.tokenize_passages(["some text"], ["A Title"])
    tokens = encoder.tokenizer.convert_ids_to_tokens(inputs["input_ids"][0])
    assert tokens == ["[CLS]", "a", "title", "[SEP]", "some", "text", "[SEP]"]
    assert int(inputs["token_type_ids"].abs().sum()) == 0
    assert encoder.format_passages(["only text"], [""]) == ["only text"]


def test_max_lengths_truncate(tiny_bert_dir):
    encoder = fp32(tiny_bert_dir, query_max_length=8, passage_max_length=12)
    long = " ".join(["word"] * 100)
    assert encoder.tokenize_queries([long])["input_ids"].shape[1] == 8
    assert encoder.tokenize_passages([long], ["title"])["input_ids"].shape[1] == 12


def test_passage_view_is_the_text_the_passage_tower_reads(tiny_bert_dir):
    encoder = fp32(tiny_bert_dir, passage_max_length=16)
    texts = [
        "The mitochondrion produces most of the cell's supply of adenosine triphosphate, used as chemical energy.",
        "short text",
        "unbelievably overcomplicated gyroscopic stabilisation apparatus " * 4,
    ]
    titles = ["Mitochondrion", "Title", None]
    view = encoder.passage_view(texts, titles)
    assert view[1] == texts[1]  # fits: whole
    for whole, cut, title in zip(texts, view, titles):
        assert whole.startswith(cut) and len(cut) <= len(whole)
        full = encoder.tokenize_passages([whole], [title])["input_ids"][0].tolist()
        assert encoder.tokenize_passages([cut], [title])["input_ids"][0].tolist() == full  # the same tokens
    assert len(view[0]) < len(texts[0]) and len(view[2]) < len(texts[2])
    assert encoder.passage_view(texts[:1], titles[:1], max_length=40) == texts[:1]  # a larger budget
    assert encoder.passage_view(["some text here"], ["a very long title indeed"], max_length=5) == [""]
    with pytest.raises(ValueError, match="max_length must be positive"):
        encoder.passage_view(texts, titles, max_length=0)


@pytest.mark.parametrize("bad", [[""], ["  "], [None], ["ok", 3]])
def test_bad_texts_are_rejected(tiny_bert_dir, bad):
    encoder = fp32(tiny_bert_dir)
    with pytest.raises(ValueError, match="empty or not a string"):
        encoder.encode_queries(bad)
    with pytest.raises(ValueError, match="empty or not a string"):
        encoder.encode_passages(bad)


def test_other_bad_input(tiny_bert_dir, tmp_path):
    encoder = fp32(tiny_bert_dir)
    with pytest.raises(ValueError, match="single string"):
        encoder.encode_queries("a question")
    with pytest.raises(ValueError, match="titles"):
        encoder.encode_passages(["a", "b"], ["only one"])
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode_queries(["a"], batch_size=0)
    with pytest.raises(FileNotFoundError, match="not found"):
        DualEncoder.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no model"):
        DualEncoder.load(tmp_path / "empty")
    assert encoder.encode_queries([]).shape == (0, encoder.embedding_dim)


@pytest.mark.parametrize("overrides", [{"pooling": "cls"}, {"pooling": "mean", "normalize": True}])
def test_shared_save_loads_in_spart_and_sentence_transformers(tiny_bert_dir, tmp_path, overrides):
    from sentence_transformers import SentenceTransformer

    encoder = fp32(tiny_bert_dir, **overrides)
    saved = encoder.save(tmp_path / "model")
    reloaded = fp32(saved)
    assert reloaded.config == encoder.config
    assert reloaded.fingerprint == encoder.fingerprint
    expected_q = encoder.encode_queries(TEXTS)
    expected_p = encoder.encode_passages(TEXTS, TITLES)
    np.testing.assert_allclose(reloaded.encode_queries(TEXTS), expected_q, atol=1e-6)
    st = SentenceTransformer(str(saved), device="cpu")
    np.testing.assert_allclose(st.encode(TEXTS), expected_q, atol=1e-5)
    np.testing.assert_allclose(st.encode(encoder.format_passages(TEXTS, TITLES)), expected_p, atol=1e-5)


def test_separate_towers_save_as_router(tiny_bert_dir, tmp_path):
    from sentence_transformers import SentenceTransformer

    encoder = fp32(tiny_bert_dir, defaults=ART_DEFAULTS)
    with torch.no_grad():  # make the towers differ, as after ART training
        for p in encoder.passage_model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    q, p = encoder.encode_queries(TEXTS), encoder.encode_passages(TEXTS, TITLES)
    assert not np.allclose(q, encoder.encode_queries(TEXTS) * 0 + p)
    saved = encoder.save(tmp_path / "art")
    reloaded = fp32(saved)
    assert not reloaded.config.shared
    np.testing.assert_allclose(reloaded.encode_queries(TEXTS), q, atol=1e-6)
    np.testing.assert_allclose(reloaded.encode_passages(TEXTS, TITLES), p, atol=1e-6)
    st = SentenceTransformer(str(saved), device="cpu")
    np.testing.assert_allclose(st.encode_query(TEXTS), q, atol=1e-5)
    np.testing.assert_allclose(st.encode_document(encoder.format_passages(TEXTS, TITLES)), p, atol=1e-5)


def test_failed_save_keeps_previous_copy(tiny_bert_dir, tmp_path, monkeypatch):
    encoder = fp32(tiny_bert_dir)
    target = encoder.save(tmp_path / "model")
    before = fp32(target).encode_queries(TEXTS[:2])

    def crash(self, directory):
        raise OSError("disk full")

    monkeypatch.setattr(DualEncoderConfig, "save", crash)
    with torch.no_grad():
        for p in encoder.parameters():
            p.mul_(2)
    with pytest.raises(OSError, match="disk full"):
        encoder.save(target)
    monkeypatch.undo()
    np.testing.assert_allclose(fp32(target).encode_queries(TEXTS[:2]), before, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging debris


def test_dpr_question_and_context_encoder_pair(tiny_bert_dir, tmp_path):
    from transformers import AutoTokenizer, DPRConfig, DPRContextEncoder, DPRQuestionEncoder

    torch.manual_seed(1)
    config = DPRConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    question, context = DPRQuestionEncoder(config).eval(), DPRContextEncoder(config).eval()
    for model, name in ((question, "q"), (context, "c")):
        model.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    encoder = fp32(tmp_path / "q", tmp_path / "c")
    assert not encoder.config.shared and encoder.config.pooling == "cls"
    batch = tokenizer(["who wrote hamlet?"], return_tensors="pt")
    batch["token_type_ids"].zero_()
    with torch.no_grad():
        expected_q = question(**batch).pooler_output.numpy()
    np.testing.assert_allclose(encoder.encode_queries(["who wrote hamlet?"]), expected_q, atol=1e-5)
    passage = tokenizer(["Hamlet"], ["A play by Shakespeare."], return_tensors="pt")
    passage["token_type_ids"].zero_()  # DPR zeroes segment ids for title/text pairs
    with torch.no_grad():
        expected_p = context(**passage).pooler_output.numpy()
    np.testing.assert_allclose(encoder.encode_passages(["A play by Shakespeare."], ["Hamlet"]), expected_p, atol=1e-5)


def test_uncased_vocab_with_case_keeping_tokenizer_gets_lowercased(tiny_bert_dir, tmp_path):
    # The SPIDER issue #8 failure: an uncased vocabulary whose tokenizer was saved without lowercasing.
    import json

    from transformers import AutoTokenizer, BertModel

    broken = tmp_path / "broken"
    BertModel.from_pretrained(tiny_bert_dir).save_pretrained(broken)
    AutoTokenizer.from_pretrained(tiny_bert_dir).save_pretrained(broken)
    config_file = broken / "tokenizer_config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "do_lower_case": False}))
    assert AutoTokenizer.from_pretrained(broken).tokenize("Hamlet") == ["[UNK]"]
    encoder = fp32(broken)
    np.testing.assert_allclose(
        encoder.encode_queries(["Who wrote HAMLET?"]), encoder.encode_queries(["who wrote hamlet?"]), atol=1e-6
    )
    kept = fp32(broken, lowercase=False)
    assert not np.allclose(kept.encode_queries(["Who wrote HAMLET?"]), kept.encode_queries(["who wrote hamlet?"]))
    # The fix is saved with the model, so other tools see lowercased input too.
    saved = encoder.save(tmp_path / "fixed")
    assert fp32(saved).tokenizer.tokenize("HAMLET") == fp32(saved).tokenizer.tokenize("hamlet")


def test_fingerprint_tracks_weights_and_config(tiny_bert_dir):
    a, b = fp32(tiny_bert_dir), fp32(tiny_bert_dir)
    assert a.fingerprint == b.fingerprint
    assert fp32(tiny_bert_dir, pooling="mean").fingerprint != a.fingerprint
    with torch.no_grad():
        next(b.parameters()).add_(1e-3)
    assert a.fingerprint != b.fingerprint


def test_passage_fingerprint_tracks_the_passage_side_only(tiny_bert_dir):
    shared = fp32(tiny_bert_dir)
    two = fp32(tiny_bert_dir, shared=False)  # the passage tower starts as a copy of the query tower
    assert two.fingerprint != shared.fingerprint and two.passage_fingerprint == shared.passage_fingerprint
    assert fp32(tiny_bert_dir, query_max_length=8).passage_fingerprint == shared.passage_fingerprint
    assert fp32(tiny_bert_dir, passage_max_length=8).passage_fingerprint != shared.passage_fingerprint
    assert fp32(tiny_bert_dir, pooling="mean").passage_fingerprint != shared.passage_fingerprint
    with torch.no_grad():
        next(two.query_model.parameters()).add_(1e-3)  # a query side trained alone
    assert two.passage_fingerprint == shared.passage_fingerprint
    texts = ["a passage about rivers", "another about apples"]
    assert np.allclose(two.encode_passages(texts), shared.encode_passages(texts), atol=1e-6)
    with torch.no_grad():
        next(two.passage_model.parameters()).add_(1e-3)
    assert two.passage_fingerprint != shared.passage_fingerprint


def test_forward_has_gradients_for_training(tiny_bert_dir):
    encoder = fp32(tiny_bert_dir, defaults=ART_DEFAULTS).train()
    q, p = encoder(encoder.tokenize_queries(["a question"]), encoder.tokenize_passages(["a passage"], ["t"]))
    (q * p).sum().backward()
    assert next(encoder.query_model.parameters()).grad is not None
    assert next(encoder.passage_model.parameters()).grad is not None


def test_bf16_autocast_matches_fp32_on_minilm(minilm_dir):
    from spart.encoders.precision import bf16_supported

    if not bf16_supported(torch.device("cpu")):
        pytest.skip("this CPU has no native bf16")
    texts = TEXTS * 4
    exact = fp32(minilm_dir).encode_passages(texts, TITLES * 4)
    fast = DualEncoder.load(minilm_dir, device="cpu", precision="bf16").encode_passages(texts, TITLES * 4)
    cosine = (exact * fast).sum(1) / np.linalg.norm(exact, axis=1) / np.linalg.norm(fast, axis=1)
    assert cosine.min() >= 0.999


def test_minilm_loads_as_sentence_transformers_model(minilm_dir):
    from sentence_transformers import SentenceTransformer

    encoder = fp32(minilm_dir)
    assert encoder.config.pooling == "mean" and encoder.config.normalize and encoder.embedding_dim == 384
    st = SentenceTransformer(str(minilm_dir), device="cpu")
    np.testing.assert_allclose(encoder.encode_queries(TEXTS), st.encode(TEXTS), atol=1e-5)


@pytest.mark.parametrize("alias", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "minilm"])
def test_minilm_aliases_load_the_packaged_copy_offline(minilm_dir, alias, monkeypatch):
    """The aliases never reach the hub (which is offline here): they mean the packaged directory."""
    import huggingface_hub

    from spart.encoders.loading import resolve_location

    def no_hub(*args, **kwargs):
        raise AssertionError("the hub was asked for a packaged model")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hub)
    assert resolve_location(alias) == Path(minilm_dir)
    encoder = DualEncoder.load(alias, device="cpu", precision="fp32")
    np.testing.assert_array_equal(encoder.encode_queries(TEXTS), fp32(minilm_dir).encode_queries(TEXTS))
