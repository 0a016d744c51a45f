"""HybridScoreFuser: named and variadic inputs, each mode's formula, raw scores kept in meta."""

from __future__ import annotations

import pytest
from haystack import Document, Pipeline, component

from spart.components.fusers import HybridScoreFuser

TYPE = "spart.components.fusers.hybrid_score_fuser.HybridScoreFuser"


def _dense():
    return [
        Document(id="a", content="A", score=0.9),
        Document(id="b", content="B", score=0.5),
        Document(id="c", content="C", score=0.1),
    ]


def _bm25():
    return [
        Document(id="b", content="B", score=10.0, meta={"title": "Bee"}),
        Document(id="d", content="D", score=6.0),
        Document(id="a", content="A", score=2.0),
    ]


def test_init():
    fuser = HybridScoreFuser()
    assert (fuser.mode, fuser.weights, fuser.top_k, fuser.input_names) == ("rrf", None, None, None)
    assert set(fuser.__haystack_input__._sockets_dict) == {"documents", "top_k"}
    named = HybridScoreFuser(mode="weighted_raw", weights=[1, 0.1], input_names=["dense", "bm25"])
    assert set(named.__haystack_input__._sockets_dict) == {"dense", "bm25", "top_k"}
    assert named.weights == [1.0, 0.1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "max"}, "unknown fusion mode 'max'"),
        ({"top_k": 0}, "top_k"),
        ({"weights": [1.0], "input_names": ["dense", "bm25"]}, "1 weights for 2"),
        ({"weights": [-1.0]}, "weight 0"),
        ({"input_names": []}, "at least one"),
        ({"input_names": ["a", "a"]}, "distinct"),
        ({"input_names": ["top_k"]}, "identifier"),
        ({"input_names": ["not valid"]}, "identifier"),
        ({"rrf_k": -1}, "rrf_k"),
        ({"score_meta_key": ""}, "score_meta_key"),
    ],
)
def test_init_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HybridScoreFuser(**kwargs)


def test_to_dict():
    fuser = HybridScoreFuser(mode="convex_zscore", weights=[0.7, 0.3], top_k=5, input_names=["dense", "bm25"])
    assert fuser.to_dict() == {
        "type": TYPE,
        "init_parameters": {
            "mode": "convex_zscore",
            "weights": [0.7, 0.3],
            "top_k": 5,
            "input_names": ["dense", "bm25"],
            "rrf_k": 60,
            "score_meta_key": "retriever_scores",
        },
    }


def test_from_dict():
    fuser = HybridScoreFuser.from_dict(
        {"type": TYPE, "init_parameters": {"mode": "weighted_raw", "input_names": ["x", "y"]}}
    )
    assert (fuser.mode, fuser.input_names, fuser.weights) == ("weighted_raw", ["x", "y"], None)
    assert set(fuser.__haystack_input__._sockets_dict) == {"x", "y", "top_k"}
    assert HybridScoreFuser.from_dict(fuser.to_dict()).to_dict() == fuser.to_dict()


def test_run_weighted_raw_named_inputs_and_meta():
    fuser = HybridScoreFuser(mode="weighted_raw", weights=[1.0, 0.1], input_names=["dense", "bm25"])
    dense, bm25 = _dense(), _bm25()
    out = fuser.run(dense=dense, bm25=bm25)["documents"]
    assert [(d.id, d.score) for d in out] == [
        ("b", pytest.approx(1.5)),
        ("a", pytest.approx(1.1)),
        ("d", pytest.approx(0.7)),
        ("c", pytest.approx(0.3)),
    ]
    by_id = {d.id: d for d in out}
    assert by_id["a"].meta["retriever_scores"] == {"dense": 0.9, "bm25": 2.0}
    assert by_id["d"].meta["retriever_scores"] == {"dense": None, "bm25": 6.0}
    assert by_id["b"].meta == {"retriever_scores": {"dense": 0.5, "bm25": 10.0}}  # taken from the dense list
    assert [d.score for d in dense] == [0.9, 0.5, 0.1] and "retriever_scores" not in bm25[0].meta  # inputs intact


@pytest.mark.parametrize(
    ("mode", "weights", "expected"),
    [
        ("rrf", None, {"a": 1 / 61 + 1 / 63, "b": 1 / 62 + 1 / 61, "c": 1 / 63, "d": 1 / 62}),
        ("rrf", [2.0, 1.0], {"a": 2 / 61 + 1 / 63, "b": 2 / 62 + 1 / 61, "c": 2 / 63, "d": 1 / 62}),
        ("convex_minmax", None, {"a": 0.5, "b": 0.75, "c": 0.0, "d": 0.25}),
        ("convex_minmax", [0.3, 0.7], {"a": 0.3, "b": 0.85, "c": 0.0, "d": 0.35}),
        ("convex_zscore", None, {"a": 0.0, "b": 1.5**0.5 / 2, "c": -(1.5**0.5), "d": -(1.5**0.5) / 2}),
        ("weighted_raw", None, {"a": 2.9, "b": 10.5, "c": 2.1, "d": 6.1}),
    ],
)
def test_run_each_mode(mode, weights, expected):
    out = HybridScoreFuser(mode=mode, weights=weights, input_names=["dense", "bm25"]).run(dense=_dense(), bm25=_bm25())
    got = {d.id: d.score for d in out["documents"]}
    assert got == pytest.approx(expected, abs=1e-12)
    scores = [d.score for d in out["documents"]]
    assert scores == sorted(scores, reverse=True)


def test_run_top_k_init_and_override():
    fuser = HybridScoreFuser(top_k=3, input_names=["dense", "bm25"])
    assert len(fuser.run(dense=_dense(), bm25=_bm25())["documents"]) == 3
    assert [d.id for d in fuser.run(dense=_dense(), bm25=_bm25(), top_k=1)["documents"]] == ["b"]
    with pytest.raises(ValueError, match="top_k"):
        fuser.run(dense=_dense(), bm25=_bm25(), top_k=0)


def test_run_variadic_direct_call_and_weight_count():
    fuser = HybridScoreFuser(mode="weighted_raw", weights=[1.0, 0.1])
    out = fuser.run(documents=[_dense(), _bm25()])["documents"]
    assert out[0].id == "b" and out[0].meta["retriever_scores"] == {"list_0": 0.5, "list_1": 10.0}
    with pytest.raises(ValueError, match="2 weights for 3"):
        fuser.run(documents=[_dense(), _bm25(), []])


def test_run_rejects_missing_scores_and_bad_lists():
    fuser = HybridScoreFuser(mode="convex_minmax", input_names=["dense", "bm25"])
    with pytest.raises(ValueError, match="'x' in list 'bm25' has no score"):
        fuser.run(dense=_dense(), bm25=[Document(id="x", content="x")])
    with pytest.raises(ValueError, match="list of Documents"):
        fuser.run(dense=_dense(), bm25="oops")
    with pytest.raises(ValueError, match="missing"):
        fuser.run(dense=_dense())
    # RRF needs ranks only.
    out = HybridScoreFuser(input_names=["dense", "bm25"]).run(dense=_dense(), bm25=[Document(id="x", content="x")])
    assert out["documents"][0].id in {"a", "x"}


def test_score_meta_key_none_leaves_meta_alone():
    out = HybridScoreFuser(score_meta_key=None, input_names=["dense", "bm25"]).run(dense=_dense(), bm25=_bm25())
    assert {d.id: d.meta for d in out["documents"]}["b"] == {}


@component
class _FixedRetriever:
    """Stands in for a retriever: returns fixed documents for any query."""

    def __init__(self, which: str):
        self.which = which

    def to_dict(self):
        return {"type": f"{__name__}._FixedRetriever", "init_parameters": {"which": self.which}}

    @component.output_types(documents=list[Document])
    def run(self, query: str):
        return {"documents": _dense() if self.which == "dense" else _bm25()}


def test_in_a_pipeline_named_and_variadic():
    pipeline = Pipeline()
    pipeline.add_component("dense_retriever", _FixedRetriever("dense"))
    pipeline.add_component("bm25_retriever", _FixedRetriever("bm25"))
    pipeline.add_component(
        "fuser", HybridScoreFuser(mode="weighted_raw", weights=[1.0, 0.1], input_names=["dense", "bm25"])
    )
    pipeline.connect("dense_retriever.documents", "fuser.dense")
    pipeline.connect("bm25_retriever.documents", "fuser.bm25")
    out = pipeline.run({"dense_retriever": {"query": "q"}, "bm25_retriever": {"query": "q"}})["fuser"]["documents"]
    assert [d.id for d in out] == ["b", "a", "d", "c"]

    variadic = Pipeline()
    variadic.add_component("dense_retriever", _FixedRetriever("dense"))
    variadic.add_component("bm25_retriever", _FixedRetriever("bm25"))
    # Variadic lists arrive alphabetically by sender name: bm25_retriever first, so weights are (bm25, dense).
    variadic.add_component("fuser", HybridScoreFuser(mode="weighted_raw", weights=[0.1, 1.0]))
    variadic.connect("dense_retriever", "fuser")
    variadic.connect("bm25_retriever", "fuser")
    res = variadic.run({"dense_retriever": {"query": "q"}, "bm25_retriever": {"query": "q"}})["fuser"]["documents"]
    assert [(d.id, d.score) for d in res] == [(d.id, pytest.approx(d.score)) for d in out]
