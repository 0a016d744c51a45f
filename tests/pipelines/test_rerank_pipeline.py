"""The packaged hybrid_rerank_qa pipeline: hybrid retrieval + QuestionLikelihoodRanker, YAML round trip and run."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Pipeline

from spart.pipelines import available_pipelines, load_pipeline, query_inputs, retrieve


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory, minilm_dir) -> Path:
    """A tiny random Llama teacher with MiniLM's tokenizer (milliseconds per forward)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("rerank-teacher")
    tok = AutoTokenizer.from_pretrained(minilm_dir)
    tok.eos_token = "[SEP]"
    config = LlamaConfig(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, pad_token_id=tok.pad_token_id,
                         eos_token_id=tok.eos_token_id, bos_token_id=tok.cls_token_id)
    LlamaForCausalLM(config).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _load(tiny_store, tiny_teacher, **kwargs):
    ranker = {"model": str(tiny_teacher), "precision": "fp32", "device": "cpu"}
    return load_pipeline("hybrid_rerank_qa", store=tiny_store, components={"ranker": ranker}, **kwargs)


def test_listed():
    assert "hybrid_rerank_qa" in available_pipelines()


def test_yaml_round_trip(tiny_store, tiny_teacher):
    pipeline = _load(tiny_store, tiny_teacher)
    again = Pipeline.loads(pipeline.dumps(), allowed_modules=["spart"])
    assert again.to_dict()["components"] == pipeline.to_dict()["components"]
    assert sorted(again.graph.edges(keys=True)) == sorted(pipeline.graph.edges(keys=True))
    assert set(pipeline.outputs()) == {"ranker"}


def test_ranker_reorders_the_fused_list(tiny_store, tiny_teacher):
    pipeline = _load(tiny_store, tiny_teacher, top_k=3)
    question = "first artificial satellite"
    assert query_inputs(pipeline, question)["ranker"] == {"query": question}
    result = pipeline.run(query_inputs(pipeline, question), include_outputs_from={"fuser"})
    fused, reranked = result["fuser"]["documents"], result["ranker"]["documents"]
    assert len(reranked) == 3
    assert {d.id for d in reranked} <= {d.id for d in fused}
    assert [d.score for d in reranked] == sorted((d.score for d in reranked), reverse=True)
    assert all(d.score < 0 for d in reranked)  # log-probabilities, not fusion scores
    # the ranker scored every fused candidate and kept the best three
    alone = pipeline.get_component("ranker").run(query=question, documents=fused, top_k=3)["documents"]
    assert [(d.id, d.score) for d in alone] == [(d.id, d.score) for d in reranked]
    assert [d.id for d in retrieve(pipeline, question)] == [d.id for d in reranked]
