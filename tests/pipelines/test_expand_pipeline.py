"""The packaged dense_expand_qa pipeline: YAML round trip, the question's routing, and retrieval by the expanded
query embedding."""

from __future__ import annotations

import numpy as np
from haystack import Pipeline

from spart.pipelines import available_pipelines, load_pipeline, question_inputs, retrieve


def _load(tiny_store, tiny_causal_dir, **kwargs):
    expander = {"model": str(tiny_causal_dir), "precision": "fp32", "device": "cpu", "max_new_tokens": 4}
    return load_pipeline("dense_expand_qa", store=tiny_store, components={"expander": expander}, **kwargs)


def test_listed_and_round_trips(tiny_store, tiny_causal_dir):
    assert "dense_expand_qa" in available_pipelines()
    pipeline = _load(tiny_store, tiny_causal_dir)
    again = Pipeline.loads(pipeline.dumps(), allowed_modules=["spart"])
    assert again.to_dict()["components"] == pipeline.to_dict()["components"]
    assert sorted(again.graph.edges(keys=True)) == sorted(pipeline.graph.edges(keys=True))
    assert set(pipeline.outputs()) == {"dense_retriever"}


def test_retrieves_by_the_expanded_embedding(tiny_store, tiny_causal_dir):
    pipeline = _load(tiny_store, tiny_causal_dir, top_k=4)
    question = "first artificial satellite"
    assert question_inputs(pipeline, question) == {"expander": {"query": question}, "text_embedder": {"text": question}}
    result = pipeline.run(question_inputs(pipeline, question), include_outputs_from={"expander", "text_embedder"})
    answer = result["expander"]["expansion"]
    embedder = pipeline.get_component("text_embedder")
    assert answer.strip()  # the tiny LM writes a few (random) tokens
    expected = embedder.encoder.encode_expanded_queries([question], [answer])[0]
    np.testing.assert_allclose(result["text_embedder"]["embedding"], expected, rtol=1e-5, atol=1e-6)
    by_hand = pipeline.get_component("dense_retriever").run(query_embedding=result["text_embedder"]["embedding"])
    docs = result["dense_retriever"]["documents"]
    assert len(docs) == 4
    assert [d.id for d in docs] == [d.id for d in by_hand["documents"]]
    assert [d.id for d in retrieve(pipeline, question)] == [d.id for d in docs]
