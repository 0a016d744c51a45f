"""Fusion tuning: candidates are scored offline with spart.fusion, the best is applied, test is refused."""

from __future__ import annotations

import pytest
from haystack import Document, Pipeline, component

from spart.components.fusers import HybridScoreFuser
from spart.evaluation.datasets import load_dataset
from spart.evaluation.evaluate import evaluate_pipeline
from spart.evaluation.tuning import candidate_grid, find_fuser, tune_fusion


@component
class TableRetriever:
    """Returns a fixed ranked list per query text: ``{query: [(id, score), ...]}``."""

    def __init__(self, table: dict):
        self.table = table

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int = 10):
        return {"documents": [Document(id=i, content="", score=s) for i, s in self.table[query][:top_k]]}


QUESTIONS = [
    "Who was the 37th president of the United States?",
    "Which city is the Eiffel Tower in?",
]
# On the train split (these two questions) list "a" is right once at rank 1 and list "b" once at rank 1;
# only a fusion that ranks both first hits get both questions at k=1 ... impossible, so top-2 decides.
TABLE_A = {QUESTIONS[0]: [("p1", 9.0), ("p5", 1.0), ("p4", 0.5)], QUESTIONS[1]: [("p5", 9.0), ("p4", 8.9), ("p3", 0.1)]}
TABLE_B = {QUESTIONS[0]: [("p4", 3.0), ("p5", 2.9), ("p1", 0.1)], QUESTIONS[1]: [("p3", 3.0), ("p5", 1.0), ("p4", 0.9)]}


def hybrid(input_names=("a", "b"), mode="rrf"):
    pipeline = Pipeline()
    pipeline.add_component("ret_a", TableRetriever(TABLE_A))
    pipeline.add_component("ret_b", TableRetriever(TABLE_B))
    pipeline.add_component("fuser", HybridScoreFuser(mode=mode, input_names=list(input_names) if input_names else None))
    if input_names:
        pipeline.connect("ret_a.documents", "fuser.a")
        pipeline.connect("ret_b.documents", "fuser.b")
    else:
        pipeline.connect("ret_b.documents", "fuser.documents")
        pipeline.connect("ret_a.documents", "fuser.documents")
    return pipeline


def test_find_fuser_orders_inputs():
    assert find_fuser(hybrid())[2] == [("ret_a", "documents"), ("ret_b", "documents")]
    assert find_fuser(hybrid(input_names=None))[2] == [("ret_a", "documents"), ("ret_b", "documents")]


def test_candidate_grid():
    grid = candidate_grid(("rrf", "convex_minmax", "weighted_raw"))
    assert grid[0] == ("rrf", [1.0, 1.0])
    assert ("convex_minmax", [0.3, 0.7]) in grid and ("weighted_raw", [1.0, 0.1]) in grid
    with pytest.raises(ValueError, match="unknown fusion mode"):
        candidate_grid(("max",))


def test_tune_fusion_picks_best_and_matches_pipeline(dpr_dir):
    dev = load_dataset(dpr_dir, "train")
    pipeline = hybrid()
    result = tune_fusion(pipeline, dev, objective="top1", top_k=3, show_progress=False)
    assert result.best.objective == max(c.objective for c in result.candidates)
    # list a alone (alpha = 1) gets question 0 at rank 1; list b alone gets question 1 at rank 1
    by = {(c.mode, tuple(c.weights)): c for c in result.candidates}
    assert by[("convex_minmax", (1.0, 0.0))].summary["top1"] == 0.5
    assert by[("convex_minmax", (0.0, 1.0))].summary["top1"] == 0.5
    # applied to the fuser, the pipeline itself reproduces the offline score
    fuser = pipeline.get_component("fuser")
    assert (fuser.mode, fuser.weights) == (result.best.mode, result.best.weights)
    rerun = evaluate_pipeline(pipeline, dev, top_k=3, ks=(1, 3), show_progress=False)
    assert rerun.summary["top1"] == result.best.objective


def test_tune_fusion_refuses_test_split(dpr_dir):
    with pytest.raises(ValueError, match="not on test"):
        tune_fusion(hybrid(), load_dataset(dpr_dir, "test"), show_progress=False)


def test_tune_fusion_beir(beir_dir):
    dev = load_dataset(beir_dir, "train")  # q3 -> d2
    table_a = {"is a tuple immutable": [("d1", 5.0), ("d2", 4.0)]}
    table_b = {"is a tuple immutable": [("d2", 0.2), ("d3", 0.1)]}
    pipeline = Pipeline()
    pipeline.add_component("ret_a", TableRetriever(table_a))
    pipeline.add_component("ret_b", TableRetriever(table_b))
    pipeline.add_component("fuser", HybridScoreFuser(input_names=["a", "b"]))
    pipeline.connect("ret_a.documents", "fuser.a")
    pipeline.connect("ret_b.documents", "fuser.b")
    result = tune_fusion(pipeline, dev, modes=("convex_minmax",), top_k=2, show_progress=False)
    assert result.objective_metric == "ndcg@10"
    assert result.best.objective == pytest.approx(1.0)  # any weight on b brings d2 first
    assert result.best.weights[1] > 0
