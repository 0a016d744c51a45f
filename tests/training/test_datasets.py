"""The registry's dataset factories: contrastive examples (spans or pairs, several corpora joined) and ART's
questions + evidence."""

from __future__ import annotations

import json

import pytest

from spart.data import Passage
from spart.training.config import ARTTrainingConfig, ContrastiveTrainingConfig
from spart.training.datasets import ConcatExamples, art_dataset, contrastive_dataset


def test_concat_examples_forwards_epoch_and_indexes_parts():
    from spart.training.supervised_pairs import LabelledQuestion, SupervisedPairs

    passages = {i: Passage(id=i, text=f"text {i}") for i in "abcd"}
    first = SupervisedPairs([LabelledQuestion("q1", ("a", "b"))], passages)
    second = SupervisedPairs([LabelledQuestion("q2", ("c",)), LabelledQuestion("q3", ("d",))], passages)
    both = ConcatExamples([first, second])
    assert len(both) == 3 and [both[i]["query"] for i in range(3)] == ["q1", "q2", "q3"]
    both.set_epoch(1)
    assert both[0]["positive"].id == "b"
    with pytest.raises(IndexError):
        both[3]
    with pytest.raises(ValueError, match="no datasets"):
        ConcatExamples([])


def test_contrastive_dataset_reads_the_configured_pairs(tmp_path):
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    rows = [("d1", "sorting a list in python"), ("d2", "reading a file"), ("d3", "catching exceptions")]
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in rows))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "how to sort"}) + "\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    config = ContrastiveTrainingConfig(
        output_dir=tmp_path / "run", model="m", data={"kind": "pairs", "beir_dir": root, "bm25_negatives": 0}
    )
    data = contrastive_dataset(config)
    assert len(data) == 1 and data[0]["positive"] == Passage(id="d1", text="sorting a list in python")


def test_art_dataset_keeps_the_first_questions_and_passages(tmp_path):
    (tmp_path / "q.txt").write_text("first question\nsecond question\nthird question\n")
    (tmp_path / "e.tsv").write_text("id\ttext\ttitle\n" + "".join(f"e{i}\ttext {i}\tT\n" for i in range(5)))
    config = ARTTrainingConfig(
        output_dir=tmp_path / "run",
        model="m",
        questions=tmp_path / "q.txt",
        evidence=tmp_path / "e.tsv",
        max_questions=2,
        max_evidence=3,
    )
    data = art_dataset(config)
    assert data.questions == ["first question", "second question"] and len(data) == 2
    assert data.evidence.ids == ["e0", "e1", "e2"]
