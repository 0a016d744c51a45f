"""The packaged rerank pipelines (hybrid_rerank_qa, dense_rerank_qa): YAML round trip and run."""

from __future__ import annotations

import pytest
from haystack import Pipeline

from spart.pipelines import available_pipelines, load_pipeline, question_inputs, retrieve

RERANK_PIPELINES = ["hybrid_rerank_qa", "dense_rerank_qa"]


def _load(tiny_store, tiny_causal_dir, name="hybrid_rerank_qa", **kwargs):
    ranker = {"model": str(tiny_causal_dir), "precision": "fp32", "device": "cpu"}
    return load_pipeline(name, store=tiny_store, components={"ranker": ranker}, **kwargs)


def test_listed():
    assert set(RERANK_PIPELINES) <= set(available_pipelines())


@pytest.mark.parametrize("name", RERANK_PIPELINES)
def test_yaml_round_trip(tiny_store, tiny_causal_dir, name):
    pipeline = _load(tiny_store, tiny_causal_dir, name)
    again = Pipeline.loads(pipeline.dumps(), allowed_modules=["spart"])
    assert again.to_dict()["components"] == pipeline.to_dict()["components"]
    assert sorted(again.graph.edges(keys=True)) == sorted(pipeline.graph.edges(keys=True))
    assert set(pipeline.outputs()) == {"ranker"}


def test_ranker_reorders_the_fused_list(tiny_store, tiny_causal_dir):
    pipeline = _load(tiny_store, tiny_causal_dir, top_k=3)
    question = "first artificial satellite"
    assert question_inputs(pipeline, question)["ranker"] == {"query": question}
    result = pipeline.run(question_inputs(pipeline, question), include_outputs_from={"fuser"})
    fused, reranked = result["fuser"]["documents"], result["ranker"]["documents"]
    assert len(reranked) == 3
    assert {d.id for d in reranked} <= {d.id for d in fused}
    assert [d.score for d in reranked] == sorted((d.score for d in reranked), reverse=True)
    assert all(d.score < 0 for d in reranked)  # log-probabilities, not fusion scores
    # the ranker scored every fused candidate and kept the best three
    alone = pipeline.get_component("ranker").run(query=question, documents=fused, top_k=3)["documents"]
    assert [(d.id, d.score) for d in alone] == [(d.id, d.score) for d in reranked]
    assert [d.id for d in retrieve(pipeline, question)] == [d.id for d in reranked]


def test_dense_rerank_reorders_the_dense_list(tiny_store, tiny_causal_dir):
    pipeline = _load(tiny_store, tiny_causal_dir, "dense_rerank_qa", top_k=4)
    question = "first artificial satellite"
    assert question_inputs(pipeline, question) == {"text_embedder": {"text": question}, "ranker": {"query": question}}
    result = pipeline.run(question_inputs(pipeline, question), include_outputs_from={"dense_retriever"})
    dense, reranked = result["dense_retriever"]["documents"], result["ranker"]["documents"]
    assert len(dense) == 6  # all six documents (the retriever keeps up to 20): the ranker sees every candidate
    assert len(reranked) == 4
    alone = pipeline.get_component("ranker").run(query=question, documents=dense, top_k=4)["documents"]
    assert [(d.id, d.score) for d in alone] == [(d.id, d.score) for d in reranked]
    assert [d.score for d in reranked] == sorted((d.score for d in reranked), reverse=True)


def test_dense_encoder_rerank_reorders_the_dense_list_by_the_second_encoder(tiny_store, tiny_encoder_dir):
    assert "dense_encoder_rerank_qa" in available_pipelines()
    ranker = {"model": str(tiny_encoder_dir), "precision": "fp32", "device": "cpu"}
    pipeline = load_pipeline("dense_encoder_rerank_qa", store=tiny_store, components={"ranker": ranker}, top_k=4)
    again = Pipeline.loads(pipeline.dumps(), allowed_modules=["spart"])
    assert again.to_dict()["components"] == pipeline.to_dict()["components"]
    question = "first artificial satellite"
    assert question_inputs(pipeline, question) == {"text_embedder": {"text": question}, "ranker": {"query": question}}
    result = pipeline.run(question_inputs(pipeline, question), include_outputs_from={"dense_retriever"})
    dense, reranked = result["dense_retriever"]["documents"], result["ranker"]["documents"]
    assert len(dense) == 6 and len(reranked) == 4
    alone = pipeline.get_component("ranker").run(query=question, documents=dense, top_k=4)["documents"]
    assert [(d.id, d.score) for d in alone] == [(d.id, d.score) for d in reranked]
    assert [d.score for d in reranked] == sorted((d.score for d in reranked), reverse=True)


def test_dense_encoder_rerank_needs_the_rankers_model(tiny_store):
    with pytest.raises(Exception, match="EncoderRanker needs model"):
        load_pipeline("dense_encoder_rerank_qa", store=tiny_store)
