"""SpiderDocumentEmbedder and ARTDocumentEmbedder: passages are ``meta[title_field] [SEP] content``."""

from __future__ import annotations

import numpy as np
import pytest
from haystack import Document

from spart.components.embedders import ARTDocumentEmbedder, ARTTextEmbedder, SpiderDocumentEmbedder
from spart.encoders import ART_DEFAULTS, SPIDER_DEFAULTS, DualEncoder

CLASSES = [(SpiderDocumentEmbedder, SPIDER_DEFAULTS), (ARTDocumentEmbedder, ART_DEFAULTS)]
IDS = ["spider", "art"]


def _docs() -> list[Document]:
    return [
        Document(id="1", content="Hamlet is a tragedy written by William Shakespeare.", meta={"title": "Hamlet"}),
        Document(id="2", content="A gyroscope measures orientation.", meta={"title": "Gyroscope", "year": 1852}),
        Document(id="3", content="Untitled text about the moon and the tides of the sea and more words."),
    ]


@pytest.mark.parametrize(("cls", "_d"), CLASSES, ids=IDS)
def test_init(cls, _d):
    embedder = cls()
    assert (embedder.batch_size, embedder.progress_bar, embedder.title_field) == (32, True, "title")
    assert embedder._encoder is None


@pytest.mark.parametrize(("cls", "_d"), CLASSES, ids=IDS)
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"), ({"title_field": ""}, "title_field")],
)
def test_init_rejects_bad_parameters(cls, _d, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize(("cls", "_d"), CLASSES, ids=IDS)
def test_to_dict(cls, _d):
    embedder = cls(model="some/model", batch_size=8, progress_bar=False, title_field="name", passage_max_length=128)
    assert embedder.to_dict() == {
        "type": f"{cls.__module__}.{cls.__name__}",
        "init_parameters": {
            "model": "some/model",
            "passage_model": None,
            "device": "auto",
            "precision": "auto",
            "query_max_length": None,
            "passage_max_length": 128,
            "pooling": None,
            "normalize": None,
            "batch_size": 8,
            "progress_bar": False,
            "title_field": "name",
            "backend": "auto",
        },
    }


@pytest.mark.parametrize(("cls", "_d"), CLASSES, ids=IDS)
def test_from_dict(cls, _d):
    data = {"type": f"{cls.__module__}.{cls.__name__}", "init_parameters": {"batch_size": 4, "title_field": None}}
    embedder = cls.from_dict(data)
    assert isinstance(embedder, cls)
    assert (embedder.batch_size, embedder.title_field, embedder.model) == (4, None, None)
    assert cls.from_dict(embedder.to_dict()).to_dict() == embedder.to_dict()


@pytest.mark.parametrize(("cls", "defaults"), CLASSES, ids=IDS)
def test_run_embeds_title_and_content_without_mutating_input(cls, defaults, tiny_bert_dir):
    docs = _docs()
    embedder = cls(model=str(tiny_bert_dir), device="cpu", precision="fp32", progress_bar=False, batch_size=2)
    out = embedder.run(docs)["documents"]
    assert [d.id for d in out] == ["1", "2", "3"]
    assert all(d.embedding is None for d in docs)  # inputs untouched
    assert all(o is not d for o, d in zip(out, docs))
    assert [o.meta for o in out] == [d.meta for d in docs] and [o.content for o in out] == [d.content for d in docs]
    reference = DualEncoder.load(tiny_bert_dir, defaults=defaults, device="cpu", precision="fp32")
    expected = reference.encode_passages([d.content for d in docs], ["Hamlet", "Gyroscope", None])
    np.testing.assert_allclose(np.array([o.embedding for o in out]), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("cls", "_d"), CLASSES, ids=IDS)
def test_run_title_field(cls, _d, tiny_bert_dir):
    kwargs = {"model": str(tiny_bert_dir), "device": "cpu", "precision": "fp32", "progress_bar": False}
    doc = [Document(id="x", content="Hamlet is a tragedy.", meta={"title": "Hamlet", "name": "Play"})]
    with_title = np.array(cls(**kwargs).run(doc)["documents"][0].embedding)
    no_title = np.array(cls(**kwargs, title_field=None).run(doc)["documents"][0].embedding)
    other = np.array(cls(**kwargs, title_field="name").run(doc)["documents"][0].embedding)
    plain = np.array(cls(**kwargs).run([Document(id="x", content="Hamlet is a tragedy.")])["documents"][0].embedding)
    assert not np.allclose(with_title, no_title) and not np.allclose(with_title, other)
    np.testing.assert_allclose(no_title, plain, rtol=1e-5, atol=1e-6)


def test_run_batch_size_does_not_change_embeddings(tiny_bert_dir):
    kwargs = {"model": str(tiny_bert_dir), "device": "cpu", "precision": "fp32", "progress_bar": False}
    docs = _docs() * 3
    one = np.array([d.embedding for d in SpiderDocumentEmbedder(**kwargs, batch_size=1).run(docs)["documents"]])
    many = np.array([d.embedding for d in SpiderDocumentEmbedder(**kwargs, batch_size=5).run(docs)["documents"]])
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("cls", "_d"), CLASSES, ids=IDS)
def test_run_empty_list(cls, _d, tiny_bert_dir):
    assert cls(model=str(tiny_bert_dir), device="cpu").run([]) == {"documents": []}


@pytest.mark.parametrize(("cls", "_d"), CLASSES, ids=IDS)
@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([Document(id="empty", content="  ")], "'empty' has no text content"),
        ([Document(id="none", content=None, meta={"title": "x"})], "'none' has no text content"),
        ("not a list", "list of Documents"),
        ([{"content": "a dict"}], "list of Documents"),
        (None, "list of Documents"),
    ],
)
def test_run_rejects_bad_documents(cls, _d, tiny_bert_dir, documents, message):
    with pytest.raises(ValueError, match=message):
        cls(model=str(tiny_bert_dir), device="cpu").run(documents)


def test_art_query_and_passage_towers_are_separate(tiny_bert_dir):
    kwargs = {"model": str(tiny_bert_dir), "device": "cpu", "precision": "fp32"}
    docs = ARTDocumentEmbedder(**kwargs, progress_bar=False)
    text = ARTTextEmbedder(**kwargs)
    assert docs.encoder is text.encoder
    assert docs.encoder.tower("query") is not docs.encoder.tower("passage")


def test_bf16_keeps_weights_in_bf16_and_stays_close_to_fp32(tiny_bert_dir):
    import torch

    kwargs = {"model": str(tiny_bert_dir), "device": "cpu", "progress_bar": False}
    bf16 = SpiderDocumentEmbedder(**kwargs, precision="bf16")
    fp32 = SpiderDocumentEmbedder(**kwargs, precision="fp32")
    assert next(bf16.encoder.parameters()).dtype == torch.bfloat16
    assert next(fp32.encoder.parameters()).dtype == torch.float32
    a = np.array([d.embedding for d in bf16.run(_docs())["documents"]])
    b = np.array([d.embedding for d in fp32.run(_docs())["documents"]])
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
@pytest.mark.parametrize(("cls", "_d"), CLASSES, ids=IDS)
def test_runtime_backend_matches_torch_and_round_trips(cls, _d, runtime, tiny_bert_dir, tmp_path, monkeypatch, request):
    request.getfixturevalue(f"{runtime}_extra")  # skips without the runtime's extra
    monkeypatch.setenv("SPART_CACHE", str(tmp_path))
    kwargs = {"model": str(tiny_bert_dir), "device": "cpu", "progress_bar": False}
    embedder = cls(**kwargs, backend=runtime)
    assert embedder.to_dict()["init_parameters"]["backend"] == runtime
    assert cls.from_dict(embedder.to_dict()).backend == runtime
    reference = cls(**kwargs, precision="fp32", backend="torch")
    got = np.array([d.embedding for d in embedder.run(_docs())["documents"]])
    expected = np.array([d.embedding for d in reference.run(_docs())["documents"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert embedder.encoder.inference_backend == runtime and reference.encoder.inference_backend == "torch"
    assert not any(p.requires_grad for p in embedder.encoder.parameters())  # inference-only, frozen at warm-up
    with pytest.raises(ValueError, match="backend must be one of"):
        cls(backend="tensorrt")
