import numpy as np
import pytest
from haystack import Document

from spart.components.rankers import QuestionLikelihoodRanker
from spart.teacher.likelihood import QuestionLikelihoodScorer

TYPE = "spart.components.rankers.question_likelihood_ranker.QuestionLikelihoodRanker"


@pytest.fixture
def docs():
    return [
        Document(
            id="a", content="Paris is the capital and most populous city of France.", meta={"title": "Paris"}, score=3.0
        ),
        Document(id="b", content="A banana is an elongated, edible fruit.", meta={"title": "Banana"}, score=2.0),
        Document(id="c", content="Python is a programming language created by Guido van Rossum.", score=1.0),
    ]


@pytest.fixture(scope="module")
def ranker(tiny_causal_dir):
    r = QuestionLikelihoodRanker(model=str(tiny_causal_dir), precision="fp32", device="cpu", batch_size=2)
    r.warm_up()
    return r


def test_init():
    r = QuestionLikelihoodRanker()
    assert r.model is None and r.top_k == 10 and r.precision == "auto" and r._scorer is None
    r = QuestionLikelihoodRanker(model="m.gguf", top_k=3, batch_size=4, precision="bf16", cache_path="c.sqlite")
    assert (r.model, r.top_k, r.batch_size, r.precision, r.cache_path) == ("m.gguf", 3, 4, "bf16", "c.sqlite")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"top_k": 0}, "top_k"),
        ({"top_k": -1}, "top_k"),
        ({"batch_size": 0}, "batch_size"),
        ({"precision": "fp8"}, "precision"),
        ({"model_kind": "bert"}, "model_kind"),
        ({"passage_template": "no text slot"}, "text"),
        ({"question_template": "Q"}, "question"),
    ],
)
def test_init_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        QuestionLikelihoodRanker(**kwargs)


def test_to_dict():
    r = QuestionLikelihoodRanker(
        model="/models/t0", top_k=5, precision="fp32", passage_template="P: {text}", cache_path="/tmp/c.sqlite"
    )
    data = r.to_dict()
    assert data["type"] == TYPE
    params = data["init_parameters"]
    assert params["model"] == "/models/t0" and params["top_k"] == 5 and params["precision"] == "fp32"
    assert params["passage_template"] == "P: {text}" and params["cache_path"] == "/tmp/c.sqlite"
    assert params["question_template"] is None and params["use_chat_template"] is None


def test_from_dict():
    data = {"type": TYPE, "init_parameters": {"model": "x.gguf", "top_k": 7, "batch_size": 8, "device": "cpu"}}
    r = QuestionLikelihoodRanker.from_dict(data)
    assert (r.model, r.top_k, r.batch_size, r.device, r.precision) == ("x.gguf", 7, 8, "cpu", "auto")
    assert QuestionLikelihoodRanker.from_dict(r.to_dict()).to_dict() == r.to_dict()


def test_run_scores_and_sorts(ranker, docs, tiny_causal_dir):
    out = ranker.run(query="What is the capital of France?", documents=docs)["documents"]
    assert sorted(d.id for d in out) == ["a", "b", "c"]
    scores = [d.score for d in out]
    assert scores == sorted(scores, reverse=True) and all(s < 0 for s in scores)
    # the scores are the teacher's, with titles taken from meta
    scorer = QuestionLikelihoodScorer(str(tiny_causal_dir), precision="fp32")
    scorer.warm_up()
    expected = scorer.score(
        "What is the capital of France?",
        [{"id": d.id, "title": d.meta.get("title", ""), "text": d.content} for d in docs],
    )
    by_id = {d.id: d.score for d in out}
    np.testing.assert_allclose([by_id[d.id] for d in docs], expected, atol=1e-5)


def test_run_does_not_mutate_inputs(ranker, docs):
    before = [(d.id, d.score, d.content, dict(d.meta)) for d in docs]
    out = ranker.run(query="Who created Python?", documents=docs)["documents"]
    assert [(d.id, d.score, d.content, dict(d.meta)) for d in docs] == before
    assert all(o is not d for o in out for d in docs)
    assert {o.id: o.content for o in out} == {d.id: d.content for d in docs}


def test_run_top_k(ranker, docs):
    full = ranker.run(query="Which fruit is yellow?", documents=docs)["documents"]
    assert [d.id for d in ranker.run(query="Which fruit is yellow?", documents=docs, top_k=2)["documents"]] == [
        d.id for d in full[:2]
    ]
    with pytest.raises(ValueError, match="top_k"):
        ranker.run(query="q?", documents=docs, top_k=0)


def test_run_empty_documents(ranker):
    assert ranker.run(query="anything?", documents=[]) == {"documents": []}


def test_run_rejects_documents_without_content(ranker, docs):
    with pytest.raises(ValueError, match="'empty' has no text content"):
        ranker.run(query="q?", documents=docs + [Document(id="empty", content=None)])
    with pytest.raises(ValueError, match="query"):
        ranker.run(query=" ", documents=docs)


def test_run_with_cache(tiny_causal_dir, docs, tmp_path):
    path = tmp_path / "scores.sqlite"
    first = QuestionLikelihoodRanker(model=str(tiny_causal_dir), precision="fp32", cache_path=str(path))
    a = first.run(query="What is the capital of France?", documents=docs)["documents"]  # warms up lazily
    second = QuestionLikelihoodRanker(model=str(tiny_causal_dir), precision="fp32", cache_path=str(path))
    second.warm_up()
    b = second.run(query="What is the capital of France?", documents=docs)["documents"]
    assert [(d.id, d.score) for d in a] == [(d.id, d.score) for d in b]
    assert second._scorer.stats["cache_hits"] == 3 and second._scorer.stats["scored"] == 0


def test_run_in_pipeline_roundtrip(tiny_causal_dir, docs):
    from haystack import Pipeline

    pipe = Pipeline()
    pipe.add_component("ranker", QuestionLikelihoodRanker(model=str(tiny_causal_dir), precision="fp32", top_k=2))
    restored = Pipeline.loads(pipe.dumps(), allowed_modules=["spart"])
    out = restored.run({"ranker": {"query": "Who created Python?", "documents": docs}})
    assert len(out["ranker"]["documents"]) == 2


@pytest.mark.slow
def test_smollm2_ranks_on_topic_passage_first():
    """The packaged SmolLM2 teacher prefers the passage that answers the question (real model, ~25 s)."""
    pytest.importorskip("gguf")
    passages = {
        "france": "Paris is the capital and most populous city of France, on the river Seine.",
        "python": "Python is a high-level programming language created by Guido van Rossum and first released in 1991.",
        "banana": "The banana is an elongated, edible fruit; it is usually yellow when ripe.",
        "moon": "The Moon is Earth's only natural satellite; it orbits Earth at about 384,000 kilometres.",
    }
    questions = {
        "What is the capital of France?": "france",
        "Who created the Python programming language?": "python",
        "What colour is a ripe banana?": "banana",
        "How far away is the Moon from the Earth?": "moon",
    }
    ranker = QuestionLikelihoodRanker(precision="fp32")
    ranker.warm_up()
    docs = [Document(id=k, content=v) for k, v in passages.items()]
    for question, answer_id in questions.items():
        top = ranker.run(query=question, documents=docs, top_k=1)["documents"][0]
        assert top.id == answer_id, question


def test_retriever_weight_interpolates_with_the_retriever_score(ranker, docs, tiny_causal_dir):
    from spart.fusion import interpolate_zscores

    lm = {d.id: d.score for d in ranker.run(query="What is the capital of France?", documents=docs)["documents"]}
    mixed = QuestionLikelihoodRanker(model=str(tiny_causal_dir), precision="fp32", retriever_weight=0.5)
    mixed._scorer = ranker._scorer  # the same loaded LM
    out = mixed.run(query="What is the capital of France?", documents=docs)["documents"]
    expected = interpolate_zscores([lm[d.id] for d in docs], [d.score for d in docs], 0.5)
    assert {d.id: d.score for d in out} == pytest.approx({d.id: e for d, e in zip(docs, expected)})
    assert [d.score for d in out] == sorted((d.score for d in out), reverse=True)
    mixed.retriever_weight = 1.0  # the retriever's own order
    assert [d.id for d in mixed.run(query="capital?", documents=docs)["documents"]] == ["a", "b", "c"]
    assert mixed.to_dict()["init_parameters"]["retriever_weight"] == 1.0


def test_retriever_weight_needs_scores_and_a_valid_weight(ranker, docs, tiny_causal_dir):
    mixed = QuestionLikelihoodRanker(model=str(tiny_causal_dir), retriever_weight=0.3)
    mixed._scorer = ranker._scorer
    unscored = [Document(id="x", content="no score here")] + docs
    with pytest.raises(ValueError, match="retriever's score"):
        mixed.run(query="q?", documents=unscored)
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="retriever_weight"):
            QuestionLikelihoodRanker(retriever_weight=bad)
