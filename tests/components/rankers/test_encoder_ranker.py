"""EncoderRanker: rerank by a second encoder's inner product, alone or mixed with the retriever's score."""

from __future__ import annotations

import pytest
from haystack import Document

from spart.components.rankers import EncoderRanker
from spart.fusion import interpolate_zscores
from spart.teacher import EncoderScorer

TYPE = "spart.components.rankers.encoder_ranker.EncoderRanker"


@pytest.fixture
def docs():
    return [
        Document(id="a", content="Paris is the capital of France.", meta={"title": "Paris"}, score=3.0),
        Document(id="b", content="A banana is an elongated, edible fruit.", meta={"title": "Banana"}, score=2.0),
        Document(id="c", content="Python is a programming language.", score=1.0),
        Document(id="d", content="The Seine flows through Paris.", meta={"title": "Seine"}, score=0.5),
    ]


@pytest.fixture(scope="module")
def model(tiny_encoder_dir):
    return str(tiny_encoder_dir)


def own_scores(model, query, docs):
    scorer = EncoderScorer(model, device="cpu", precision="fp32")
    passages = [{"id": d.id, "title": (d.meta or {}).get("title", ""), "text": d.content} for d in docs]
    return [float(s) for s in scorer.score(query, passages)]


def test_ranks_by_the_encoders_score(model, docs):
    ranker = EncoderRanker(model=model, precision="fp32", device="cpu", top_k=None)
    out = ranker.run(query="what is the capital of france?", documents=docs)["documents"]
    expected = own_scores(model, "what is the capital of france?", docs)
    assert [d.score for d in out] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
    assert {d.id for d in out} == {"a", "b", "c", "d"}
    assert [d.score for d in docs] == [3.0, 2.0, 1.0, 0.5]  # inputs untouched
    assert len(ranker.run(query="q?", documents=docs, top_k=2)["documents"]) == 2


def test_retriever_weight_mixes_in_the_retrievers_score(model, docs):
    ranker = EncoderRanker(model=model, precision="fp32", device="cpu", top_k=None, retriever_weight=0.5)
    out = ranker.run(query="what is the capital of france?", documents=docs)["documents"]
    mixed = interpolate_zscores(own_scores(model, "what is the capital of france?", docs), [3.0, 2.0, 1.0, 0.5], 0.5)
    by_id = dict(zip("abcd", mixed))
    assert [d.score for d in out] == pytest.approx([by_id[d.id] for d in out])
    assert [d.score for d in out] == sorted((d.score for d in out), reverse=True)
    only_retriever = EncoderRanker(model=model, device="cpu", top_k=None, retriever_weight=1.0)
    assert [d.id for d in only_retriever.run(query="q?", documents=docs)["documents"]] == ["a", "b", "c", "d"]


def test_bad_documents_and_queries_are_refused(model, docs):
    ranker = EncoderRanker(model=model, device="cpu", retriever_weight=0.5)
    with pytest.raises(ValueError, match="retriever's score"):
        ranker.run(query="q?", documents=[Document(id="x", content="text")])
    with pytest.raises(ValueError, match="'y' has no text content"):
        EncoderRanker(model=model, device="cpu").run(query="q?", documents=[Document(id="y", content=" ")])
    with pytest.raises(ValueError, match="non-empty query"):
        ranker.run(query=" ", documents=docs)
    assert ranker.run(query="q?", documents=[]) == {"documents": []}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": ""}, "model"),
        ({"model": "m", "top_k": 0}, "top_k"),
        ({"model": "m", "batch_size": 0}, "batch_size"),
        ({"model": "m", "precision": "fp8"}, "precision"),
        ({"model": "m", "device": ""}, "device"),
        ({"model": "m", "retriever_weight": 1.5}, "retriever_weight"),
    ],
)
def test_init_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EncoderRanker(**kwargs)


def test_to_dict_round_trip():
    ranker = EncoderRanker(model="/models/mpnet", top_k=5, precision="bf16", retriever_weight=0.25)
    data = ranker.to_dict()
    assert data["type"] == TYPE
    assert data["init_parameters"] == {
        "model": "/models/mpnet",
        "top_k": 5,
        "batch_size": 64,
        "precision": "bf16",
        "device": "auto",
        "title_meta_field": "title",
        "retriever_weight": 0.25,
    }
    again = EncoderRanker.from_dict(data)
    assert again.to_dict() == data and again._scorer is None  # nothing loaded before warm_up
