"""Paired significance tests: scipy on per-query values, ranx on BEIR runs, and comparisons of run records."""

from __future__ import annotations

import pytest

from spart.evaluation.significance import (
    baseline_significance,
    compare_records,
    compare_runs,
    hits_in_top,
    paired_significance,
    per_query_values,
)


def test_compare_runs_reports_p_values():
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(20)}
    good = {f"q{i}": [f"d{i}", "x"] for i in range(20)}
    bad = {f"q{i}": ["x", "y", f"d{i}"] if i % 4 else [f"d{i}"] for i in range(20)}
    report = compare_runs(qrels, {"good": good, "bad": bad}, metrics=("mrr@10",))
    assert report["good"]["scores"]["mrr@10"] == pytest.approx(1.0)
    assert report["good"]["comparisons"]["bad"]["mrr@10"] < 0.05


def test_paired_significance():
    a = [1, 1, 1, 1, 0, 1, 1, 1, 1, 1] * 3
    b = [0, 0, 1, 0, 0, 0, 1, 0, 0, 0] * 3
    assert paired_significance(a, b) < 0.01
    assert paired_significance(a, a) == 1.0
    with pytest.raises(ValueError, match="same 1-d shape"):
        paired_significance([1, 0], [1])


def dpr_records(hits):
    return [{"qid": str(i), "doc_ids": [f"p{j}" for j in range(len(h))], "hits": h} for i, h in enumerate(hits)]


def test_hits_and_dpr_comparison():
    a = dpr_records([[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]])
    b = dpr_records([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    assert hits_in_top(a, 2).tolist() == [1.0, 1.0, 0.0, 0.0]
    top1, top2 = compare_records(a, list(reversed(b)), ["top1", "top2"])  # records are matched by qid
    assert (top1.mean_a, top1.mean_b, top1.wins, top1.ties, top1.losses) == (0.25, 0.5, 1, 3, 0)
    assert (top2.mean_a, top2.mean_b, top2.difference) == (0.5, 0.75, 0.25)
    assert top2.p_value == pytest.approx(paired_significance([1, 1, 0, 0], [1, 1, 1, 0]))
    with pytest.raises(ValueError, match="different queries"):
        compare_records(a, b[:3], ["top1"])
    with pytest.raises(ValueError, match="need BEIR records"):
        compare_records(a, b, ["ndcg@10"])


def test_beir_values_from_records():
    records = [
        {"qid": "q1", "relevant": ["d1"], "doc_ids": ["d2", "d1"], "hits": [0, 1]},
        {"qid": "q2", "relevant": ["d3"], "doc_ids": ["d3"], "hits": [1]},
    ]
    values = per_query_values(records, ["mrr@10", "top1"])
    assert values["mrr@10"].tolist() == pytest.approx([0.5, 1.0])
    assert values["top1"].tolist() == [0.0, 1.0]


class _Result:
    def __init__(self, system, hits):
        self.system = system
        self.per_query = dpr_records(hits)
        self.summary = {"top1": 0.0, "top2": 0.0}


class _Dataset:
    kind = "dpr"


def test_baseline_significance_dpr():
    base = _Result("base", [[0, 1]] * 6)
    same = _Result("same", [[0, 1]] * 6)
    better = _Result("better", [[1, 0]] * 5 + [[0, 0]])
    tests = baseline_significance([base, same, better], _Dataset(), "fisher")
    assert tests["baseline"] == "base" and tests["test"] == "student"
    assert tests["p_values"]["same"] == {"top1": 1.0, "top2": 1.0}
    assert tests["p_values"]["better"]["top1"] == pytest.approx(paired_significance([1] * 5 + [0], [0] * 6))
    assert baseline_significance([base], _Dataset(), "student") == {}


def test_baseline_significance_beir_gives_p_1_where_no_query_differs():
    class Beir:
        kind = "beir"
        qrels = {f"q{i}": {f"d{i}": 1} for i in range(8)}

    def result(system, first):
        r = _Result(system, [])
        r.per_query = [{"qid": f"q{i}", "doc_ids": [f"d{i}", "x"] if first(i) else ["x", f"d{i}"]} for i in range(8)]
        r.summary = {"ndcg@10": 0.0, "recall@100": 0.0}
        return r

    tests = baseline_significance([result("base", lambda i: i < 2), result("new", lambda i: True)], Beir(), "student")
    p = tests["p_values"]["new"]
    assert p["recall@100"] == 1.0  # every query finds its passage in both: ranx's t-test would be NaN
    assert 0.0 < p["ndcg@10"] < 0.05
