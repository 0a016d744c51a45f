"""The evaluator on tiny real pipelines: dataset resolution, DPR and BEIR scoring, per-query files."""

from __future__ import annotations

import pytest
from _fake_components import fixed_pipeline, rerank_pipeline

from spart.evaluation.datasets import load_dataset
from spart.evaluation.evaluate import evaluate_pipeline, evaluate_rankings
from spart.evaluation.runs import Retrieved, read_jsonl, run_pipeline
from spart.evaluation.significance import hits_in_top


def test_load_dataset_dpr_directory(dpr_dir):
    ds = load_dataset(dpr_dir, "test")
    assert ds.kind == "dpr" and len(ds.queries) == 4
    assert ds.queries[0].answers == ("Richard Nixon",)
    assert load_dataset(dpr_dir, "train").queries[1].text == "Which city is the Eiffel Tower in?"
    # a QA file alone finds passages.tsv beside it
    assert load_dataset(dpr_dir / "trivia-test.csv").files["corpus"].endswith("passages.tsv")
    with pytest.raises(FileNotFoundError, match="split 'dev'"):
        load_dataset(dpr_dir, "dev")


def test_load_dataset_beir_directory(beir_dir):
    ds = load_dataset(beir_dir, "test")
    assert ds.kind == "beir"
    assert [q.id for q in ds.queries] == ["q1", "q2"]  # only the judged queries of the split
    assert ds.qrels == {"q1": {"d1": 1}, "q2": {"d3": 1, "d4": 1}}
    with pytest.raises(FileNotFoundError):
        load_dataset(beir_dir, "dev")


def test_dpr_title_only_answer_is_not_a_hit(dpr_dir):
    ds = load_dataset(dpr_dir, "test")
    # every question gets p4 first: its *title* is "Edwin Hubble" but its text lacks the answer
    rankings = [Retrieved(["p4", "p1", "p3"], [3.0, 2.0, 1.0], [None] * 3) for _ in ds.queries]
    result = evaluate_rankings(ds, rankings, ks=(1, 2, 3), max_k=3)
    assert result.summary == {"top1": 0.0, "top2": 0.25, "top3": 0.5}
    assert [r["first_hit_rank"] for r in result.per_query] == [2, 3, 0, 0]
    assert result.curve == [0.0, 0.25, 0.5] and result.curve_ks == [1, 2, 3]


def test_dpr_uses_corpus_text_not_document_content(dpr_dir):
    # FixedRetriever's contents never contain answers; the corpus texts do
    ds = load_dataset(dpr_dir, "test")
    result = evaluate_pipeline(fixed_pipeline(["p5", "p1"]), ds, top_k=2, ks=(1, 2), show_progress=False)
    assert result.summary == {"top1": 0.25, "top2": 0.5}


def test_evaluate_bm25_pipeline_dpr(dpr_dir, tmp_path, bm25_pipeline):
    ds = load_dataset(dpr_dir, "test")
    out = tmp_path / "runs" / "bm25.jsonl"
    result = evaluate_pipeline(
        bm25_pipeline(ds.corpus_path),
        ds,
        system="bm25",
        top_k=3,
        ks=(1, 3),
        per_query_path=str(out),
        show_progress=False,
    )
    records = read_jsonl(out)
    assert [r["qid"] for r in records] == ["0", "1", "2", "3"]
    assert records[0]["doc_ids"][0] == "p1" and records[0]["hits"][0] == 1
    assert all(len(r["doc_ids"]) == 3 == len(r["scores"]) for r in records)
    # questions 1, 2 and 4 are answerable from texts (the Hubble answer is only in a title)
    assert result.summary["top3"] == pytest.approx(0.75)
    assert hits_in_top(result.per_query, 3).tolist() == [1.0, 1.0, 0.0, 1.0]


def test_evaluate_beir_fixed_rankings(beir_dir):
    ds = load_dataset(beir_dir, "test")
    result = evaluate_pipeline(
        fixed_pipeline(["d3", "d1", "d2", "d4"]), ds, top_k=4, metrics=("mrr@10", "recall@2"), show_progress=False
    )
    # q1: d1 at rank 2 → RR 0.5, recall@2 1; q2: d3 at rank 1, d4 at 4 → RR 1, recall@2 0.5
    assert result.summary["mrr@10"] == pytest.approx(0.75)
    assert result.summary["recall@2"] == pytest.approx(0.75)
    # the Recall@k curve is sampled at CURVE_KS (1, 2, 3, 5, ...) up to top_k
    assert result.curve_ks == [1, 2, 3]
    assert result.curve == pytest.approx([0.25, 0.75, 0.75])
    assert result.per_query[1]["hits"] == [1, 0, 0, 1]


def test_run_pipeline_rejects_bad_top_k():
    with pytest.raises(ValueError, match="top_k"):
        run_pipeline(fixed_pipeline(["a"]), ["q"], top_k=0)
    with pytest.raises(ValueError, match="depth must be a positive integer or None, got 0"):
        run_pipeline(fixed_pipeline(["a"]), ["q"], top_k=3, depth=0)


def test_evaluate_depth_is_the_number_of_candidates_a_ranker_scores(dpr_dir):
    pipeline = rerank_pipeline(["p4", "p3", "p2", "p1", "p5"])
    ds = load_dataset(dpr_dir, "test")
    result = evaluate_pipeline(pipeline, ds, top_k=2, depth=4, ks=(1, 2), show_progress=False)
    assert pipeline.get_component("ranker").seen == [4, 4, 4, 4]
    assert all(len(r["doc_ids"]) == 2 for r in result.per_query)


def test_evaluate_rankings_length_mismatch(dpr_dir):
    ds = load_dataset(dpr_dir, "test")
    with pytest.raises(ValueError, match="4 queries"):
        evaluate_rankings(ds, [Retrieved([], [], [])])
