"""SpiderTextEmbedder and ARTTextEmbedder: one shared implementation, each with its method's defaults."""

from __future__ import annotations

import numpy as np
import pytest
from haystack import Pipeline

from spart.components.embedders import ARTTextEmbedder, SpiderTextEmbedder
from spart.encoders import ART_DEFAULTS, SPIDER_DEFAULTS, DualEncoder

CLASSES = [(SpiderTextEmbedder, SPIDER_DEFAULTS), (ARTTextEmbedder, ART_DEFAULTS)]
IDS = ["spider", "art"]


@pytest.mark.parametrize(("cls", "_defaults"), CLASSES, ids=IDS)
def test_init(cls, _defaults):
    embedder = cls()
    assert embedder.model is None and embedder.passage_model is None
    assert (embedder.device, embedder.precision) == ("auto", "auto")
    assert embedder.pooling is None and embedder.normalize is None
    assert embedder._encoder is None  # nothing heavy happens in __init__


@pytest.mark.parametrize(("cls", "_defaults"), CLASSES, ids=IDS)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "fp16"}, "precision"),
        ({"pooling": "max"}, "pooling"),
        ({"query_max_length": 2}, "query_max_length"),
        ({"normalize": "yes"}, "normalize"),
        ({"model": ""}, "model"),
        ({"passage_model": "/x"}, "passage_model"),
        ({"device": ""}, "device"),
        ({"backend": "tensorrt"}, "backend"),
    ],
)
def test_init_rejects_bad_parameters(cls, _defaults, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize(("cls", "_defaults"), CLASSES, ids=IDS)
def test_to_dict(cls, _defaults, tiny_bert_dir):
    embedder = cls(model=str(tiny_bert_dir), precision="fp32", query_max_length=32, pooling="mean")
    assert embedder.to_dict() == {
        "type": f"{cls.__module__}.{cls.__name__}",
        "init_parameters": {
            "model": str(tiny_bert_dir),
            "passage_model": None,
            "device": "auto",
            "precision": "fp32",
            "query_max_length": 32,
            "passage_max_length": None,
            "pooling": "mean",
            "normalize": None,
            "backend": "auto",
        },
    }


@pytest.mark.parametrize(("cls", "_defaults"), CLASSES, ids=IDS)
def test_from_dict(cls, _defaults, tiny_bert_dir):
    data = {
        "type": f"{cls.__module__}.{cls.__name__}",
        "init_parameters": {"model": str(tiny_bert_dir), "device": "cpu", "normalize": True},
    }
    embedder = cls.from_dict(data)
    assert isinstance(embedder, cls)
    assert (embedder.model, embedder.device, embedder.normalize) == (str(tiny_bert_dir), "cpu", True)
    assert cls.from_dict(embedder.to_dict()).to_dict() == embedder.to_dict()


@pytest.mark.parametrize(("cls", "defaults"), CLASSES, ids=IDS)
def test_run_matches_dual_encoder_query_tower(cls, defaults, tiny_bert_dir):
    embedder = cls(model=str(tiny_bert_dir), device="cpu", precision="fp32")
    embedder.warm_up()
    assert embedder.encoder.config.shared is defaults.shared
    assert embedder.encoder.config.pooling == "cls"
    result = embedder.run("who wrote hamlet?")
    assert set(result) == {"embedding"}
    assert isinstance(result["embedding"], list) and all(isinstance(x, float) for x in result["embedding"])
    reference = DualEncoder.load(tiny_bert_dir, defaults=defaults, device="cpu", precision="fp32")
    expected = reference.encode_queries(["who wrote hamlet?"])[0]
    np.testing.assert_allclose(result["embedding"], expected, rtol=1e-5, atol=1e-6)
    assert embedder.embedding_dim == 32


@pytest.mark.parametrize(("cls", "_defaults"), CLASSES, ids=IDS)
def test_run_applies_overrides(cls, _defaults, tiny_bert_dir):
    embedder = cls(model=str(tiny_bert_dir), device="cpu", precision="fp32", normalize=True, pooling="mean")
    vector = np.asarray(embedder.run("a question")["embedding"])  # run warms up on its own
    assert embedder.encoder.config.pooling == "mean"
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("cls", "_defaults"), CLASSES, ids=IDS)
@pytest.mark.parametrize("bad", [None, "", "   ", ["a list"], 3])
def test_run_rejects_bad_text(cls, _defaults, tiny_bert_dir, bad):
    embedder = cls(model=str(tiny_bert_dir), device="cpu")
    with pytest.raises(ValueError, match="query"):
        embedder.run(bad)


@pytest.mark.parametrize(("cls", "defaults"), CLASSES, ids=IDS)
def test_an_expansion_averages_the_query_with_the_passage_tower_embedding(cls, defaults, tiny_bert_dir):
    embedder = cls(model=str(tiny_bert_dir), device="cpu", precision="fp32")
    query, answer = "which country was formerly abyssinia?", "Ethiopia"
    plain = np.asarray(embedder.run(query)["embedding"])
    expanded = np.asarray(embedder.run(query, expansion=answer)["embedding"])
    reference = DualEncoder.load(tiny_bert_dir, defaults=defaults, device="cpu", precision="fp32")
    passage = reference.encode_passages([answer])[0]
    np.testing.assert_allclose(expanded, (plain + passage) / 2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(expanded, plain)
    # a blank expansion (an LM that wrote nothing) leaves the plain query embedding
    np.testing.assert_allclose(embedder.run(query, expansion="  ")["embedding"], plain, rtol=1e-6)
    with pytest.raises(ValueError, match="expansion"):
        embedder.run(query, expansion=["Ethiopia"])


def test_expanded_queries_check_their_inputs(tiny_bert_dir):
    encoder = DualEncoder.load(tiny_bert_dir, device="cpu", precision="fp32")
    with pytest.raises(ValueError, match="2 queries but 1 expansions"):
        encoder.encode_expanded_queries(["a?", "b?"], ["x"])
    with pytest.raises(ValueError, match="expansion 0 is empty"):
        encoder.encode_expanded_queries(["a?"], [""])


def test_default_model_is_the_packaged_minilm(minilm_dir):
    embedder = SpiderTextEmbedder(device="cpu", precision="fp32")
    assert embedder.resolved_model == str(minilm_dir)
    assert embedder.to_dict()["init_parameters"]["model"] is None  # the resolved path is never serialised
    vector = np.asarray(embedder.run("hello world")["embedding"])
    # MiniLM's own files ask for mean pooling and normalisation; they win over SPIDER's cls default.
    assert embedder.encoder.config.pooling == "mean" and vector.shape == (384,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_embedders_with_the_same_model_share_one_encoder(tiny_bert_dir):
    from spart.components.embedders import SpiderDocumentEmbedder

    text = SpiderTextEmbedder(model=str(tiny_bert_dir), device="cpu", precision="fp32")
    docs = SpiderDocumentEmbedder(model=str(tiny_bert_dir), device="cpu", precision="fp32")
    other = SpiderTextEmbedder(model=str(tiny_bert_dir), device="cpu", precision="fp32", pooling="mean")
    art = ARTTextEmbedder(model=str(tiny_bert_dir), device="cpu", precision="fp32")
    assert text.encoder is docs.encoder
    assert other.encoder is not text.encoder
    assert art.encoder is not text.encoder


def test_in_a_pipeline_yaml_round_trip(tiny_bert_dir):
    pipeline = Pipeline()
    pipeline.add_component("embedder", SpiderTextEmbedder(model=str(tiny_bert_dir), device="cpu"))
    restored = Pipeline.loads(pipeline.dumps(), allowed_modules=["spart"])
    assert restored.to_dict() == pipeline.to_dict()
    result = restored.run({"embedder": {"text": "what is a gyroscope?"}})
    assert len(result["embedder"]["embedding"]) == 32


def test_a_model_saved_again_at_the_same_path_is_reloaded(tmp_path, tiny_bert_dir):
    import torch

    location = tmp_path / "model"
    encoder = DualEncoder.load(tiny_bert_dir, device="cpu", precision="fp32")
    encoder.save(location)
    first = SpiderTextEmbedder(model=str(location), device="cpu", precision="fp32")
    before = first.run("a question")["embedding"]
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(0.01)
    encoder.save(location)  # new weights, same path (as a trainer's checkpoint would)
    second = SpiderTextEmbedder(model=str(location), device="cpu", precision="fp32")
    assert second.encoder is not first.encoder  # `first` is still alive, yet not reused
    assert not np.allclose(second.run("a question")["embedding"], before)
