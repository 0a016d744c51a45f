"""The pipeline runner: which inputs get the question, top_k (final list) and depth (candidates)."""

from __future__ import annotations

import pytest
from _fake_components import FixedRetriever, fixed_pipeline, rerank_pipeline
from haystack import Document, Pipeline, component

from spart.pipelines import load_pipeline
from spart.pipelines.display import ask
from spart.pipelines.running import document_components, output_component, question_inputs, retrieve, run_question

Q = "first artificial satellite"


@component
class NoTopK:
    @component.output_types(documents=list[Document])
    def run(self, query: str):
        return {"documents": []}


def test_question_inputs_and_output_component():
    pipeline = fixed_pipeline(["a"])
    assert question_inputs(pipeline, "q?", top_k=7) == {"retriever": {"query": "q?", "top_k": 7}}
    assert question_inputs(pipeline, "q?") == {"retriever": {"query": "q?"}}
    assert output_component(pipeline) == "retriever"
    with pytest.raises(ValueError, match="no component"):
        output_component(pipeline, "ranker")


def test_depth_is_the_candidates_and_top_k_the_final_list():
    pipeline = rerank_pipeline([f"d{i}" for i in range(30)])
    assert output_component(pipeline) == "ranker"
    assert document_components(pipeline) == ["retriever", "ranker"]
    assert question_inputs(pipeline, "q", top_k=3, depth=12) == {
        "retriever": {"query": "q", "top_k": 12},
        "ranker": {"query": "q", "top_k": 3},
    }
    lists = run_question(pipeline, "q", top_k=3, depth=12, keep=["retriever"])
    assert list(lists) == ["ranker", "retriever"]  # the answer first
    assert len(lists["ranker"]) == 3 and len(lists["retriever"]) == 12
    assert pipeline.get_component("ranker").seen == [12]  # the ranker scored `depth` candidates
    # depth alone leaves the final list at the component's own setting; top_k alone leaves the candidates
    assert len(retrieve(pipeline, "q", depth=25)) == 10
    assert pipeline.get_component("ranker").seen[-1] == 25
    assert len(retrieve(pipeline, "q", top_k=2)) == 2
    assert pipeline.get_component("ranker").seen[-1] == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top_k": 0}, "top_k must be a positive integer or None, got 0"),
        ({"depth": 0}, "depth must be a positive integer or None, got 0"),
        ({"depth": -5}, "depth must be a positive integer or None, got -5"),
        ({"top_k": True}, "top_k must be a positive integer or None, got True"),
    ],
)
def test_bad_top_k_and_depth(kwargs, message):
    with pytest.raises(ValueError) as info:
        question_inputs(fixed_pipeline(["a"]), "q", **kwargs)
    assert str(info.value) == message


def test_pipelines_the_runner_refuses():
    with pytest.raises(ValueError, match="non-empty string"):
        question_inputs(fixed_pipeline(["a"]), "  ")
    two = fixed_pipeline(["a"])
    two.add_component("other", FixedRetriever(["b"]))
    assert question_inputs(two, "q") == {"retriever": {"query": "q"}, "other": {"query": "q"}}
    with pytest.raises(ValueError, match="exactly one component"):
        question_inputs(two, "q", depth=3)
    assert output_component(two, "other") == "other"
    without = Pipeline()
    without.add_component("fixed", NoTopK())
    assert question_inputs(without, "q") == {"fixed": {"query": "q"}}
    with pytest.raises(ValueError, match="'fixed' has no open top_k input"):
        question_inputs(without, "q", top_k=3)

    @component
    class NeedsOther:
        @component.output_types(documents=list[Document])
        def run(self, query: str, language: str):
            return {"documents": []}

    mandatory = Pipeline()
    mandatory.add_component("x", NeedsOther())
    with pytest.raises(ValueError, match="x.language is mandatory"):
        question_inputs(mandatory, "q")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("bm25_qa", {"bm25_retriever": {"query": Q, "top_k": 3}}),
        ("dense_qa", {"text_embedder": {"text": Q}, "dense_retriever": {"top_k": 3}}),
        (
            "hybrid_qa",
            {
                "text_embedder": {"text": Q},
                "dense_retriever": {"top_k": 5},
                "bm25_retriever": {"query": Q, "top_k": 5},
                "fuser": {"top_k": 3},
            },
        ),
        (
            "dense_rerank_qa",
            {"text_embedder": {"text": Q}, "dense_retriever": {"top_k": 5}, "ranker": {"query": Q, "top_k": 3}},
        ),
        (
            "hybrid_rerank_qa",
            {
                "text_embedder": {"text": Q},
                "dense_retriever": {"top_k": 5},
                "bm25_retriever": {"query": Q, "top_k": 5},
                "fuser": {"top_k": 5},
                "ranker": {"query": Q, "top_k": 3},
            },
        ),
    ],
)
def test_rule_on_the_packaged_pipelines(name, expected, tiny_store):
    pipeline = load_pipeline(name, store=tiny_store)  # the ranker's LM is loaded only when it runs
    assert question_inputs(pipeline, Q, top_k=3, depth=5) == expected


def test_hybrid_top_k_and_depth_at_run_time(tiny_store):
    pipeline = load_pipeline("hybrid_qa", store=tiny_store)
    lists = run_question(pipeline, Q, top_k=2, depth=3, keep=document_components(pipeline))
    assert [len(lists[n]) for n in ("fuser", "dense_retriever")] == [2, 3]
    assert len(lists["bm25_retriever"]) <= 3
    answer = ask(pipeline, Q, top_k=2, depth=4)
    assert answer.final == "fuser" and len(answer.documents) == 2
    assert len(answer.lists["dense_retriever"]) == 4
    assert set(answer.retrievers) == {"dense_retriever", "bm25_retriever"}


def test_load_pipeline_top_k_goes_to_the_output_component(tiny_store):
    rerank = load_pipeline("hybrid_rerank_qa", store=tiny_store, top_k=4)
    assert rerank.get_component("ranker").top_k == 4
    assert rerank.get_component("fuser").top_k == 20  # the candidates keep the YAML's setting
    kept = load_pipeline("hybrid_qa", store=tiny_store, top_k=4, components={"fuser": {"top_k": 6}})
    assert kept.get_component("fuser").top_k == 6  # `components` is applied last
