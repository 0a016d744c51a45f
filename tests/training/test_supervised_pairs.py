"""Few-shot data: labelled pairs from BEIR qrels / DPR JSON with BM25 hard negatives, trained end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _trainer_helpers import make_tiny_bert

from spart.cli import main as spart_main
from spart.data import Passage
from spart.training.supervised_pairs import LabelledQuestion, SupervisedPairs, with_bm25_negatives

CORPUS = [
    ("d1", "Lists", "how to sort a list in python use sorted or list sort"),
    ("d2", "Lists", "sorted returns a new list while sort works in place"),
    ("d3", "Dicts", "a dictionary maps keys to values"),
    ("d4", "Sorting", "sorting algorithms sort a list of numbers quickly"),
    ("d5", "Files", "open a file with open and read it"),
    ("d6", "Files", "write to a file with the write method"),
    ("d7", "Errors", "exceptions are raised with raise and caught with except"),
    ("d8", "Loops", "a for loop iterates over a list"),
]
QUERIES = {
    "q1": "how do I sort a list",
    "q2": "how do I read a file",
    "q3": "how are exceptions caught",
    "q4": "what does a dictionary map",
    "q5": "test only question",
}
TRAIN = [("q1", "d1"), ("q1", "d2"), ("q2", "d5"), ("q3", "d7"), ("q4", "d3")]


@pytest.fixture
def beir_dir(tmp_path):
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as f:
        for pid, title, text in CORPUS:
            f.write(json.dumps({"_id": pid, "title": title, "text": text}) + "\n")
    with open(root / "queries.jsonl", "w") as f:
        for qid, text in QUERIES.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in TRAIN)
    )
    return root


def test_from_beir_groups_positives_and_mines_non_relevant_negatives(beir_dir):
    data = SupervisedPairs.from_beir(beir_dir, "train", bm25_negatives=2)
    assert len(data) == 4  # one example per question; q5 has no train qrels
    q1 = data.questions[0]
    assert q1.text == QUERIES["q1"] and q1.positive_ids == ("d1", "d2")
    # "sort a list" -> d1, d2 (positives, excluded), then d4 and d8 are the best BM25 non-relevant passages
    assert q1.negative_ids[0] == "d4" and not set(q1.negative_ids) & {"d1", "d2"}
    for q in data.questions:
        assert not set(q.negative_ids) & set(q.positive_ids)


def test_epochs_cycle_positives_and_negatives(beir_dir):
    data = SupervisedPairs.from_beir(beir_dir, "train", bm25_negatives=2)
    data.set_epoch(0)
    first = data[0]
    data.set_epoch(1)
    second = data[0]
    assert first["query"] == second["query"]
    assert {first["positive"].id, second["positive"].id} == {"d1", "d2"}
    assert first["negative"].id != second["negative"].id
    assert set(first["positive_ids"]) == {"d1", "d2"}
    assert isinstance(first["positive"], Passage) and first["positive"].title == "Lists"


def test_without_negatives(beir_dir):
    data = SupervisedPairs.from_beir(beir_dir, "train", bm25_negatives=0)
    assert data[0]["negative"] is None


def test_dpr_json_with_file_negatives_and_with_bm25(tmp_path, beir_dir):
    records = [
        {
            "question": "how do I sort a list",
            "answers": ["sorted"],
            "positive_ctxs": [{"title": "Lists", "text": CORPUS[0][2], "passage_id": "d1"}],
            "hard_negative_ctxs": [{"title": "Files", "text": CORPUS[4][2], "passage_id": "d5"}],
        },
        {"question": "no positive here", "positive_ctxs": [], "hard_negative_ctxs": []},
        {"question": "how are exceptions caught", "positive_ctxs": [{"title": "Errors", "text": CORPUS[6][2]}]},
    ]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    data = SupervisedPairs.from_dpr_json(path)
    assert len(data) == 2
    assert data[0]["positive"].id == "d1" and data[0]["negative"].id == "d5"
    assert data[1]["positive"].id.startswith("dpr:") and data[1]["negative"] is None
    mined = SupervisedPairs.from_dpr_json(path, corpus=beir_dir / "corpus.jsonl", bm25_negatives=1)
    assert mined[0]["negative"].id == "d4"  # BM25 best non-positive for "sort a list" (d2 is not a positive here)


def test_bad_inputs(tmp_path, beir_dir):
    with pytest.raises(FileNotFoundError):
        SupervisedPairs.from_dpr_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        SupervisedPairs.from_dpr_json(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no question"):
        SupervisedPairs.from_dpr_json(_write(tmp_path / "q.json", [{"positive_ctxs": []}]))
    with pytest.raises(FileNotFoundError):
        SupervisedPairs.from_beir(beir_dir, "dev")
    (beir_dir / "qrels" / "x.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tmissing\t1\n")
    with pytest.raises(ValueError, match="missing"):
        SupervisedPairs.from_beir(beir_dir, "x")
    with pytest.raises(ValueError, match="no labelled"):
        SupervisedPairs([], {})
    with pytest.raises(ValueError, match="k must be positive"):
        with_bm25_negatives([LabelledQuestion("q", ("a",))], [Passage(id="a", text="t")], 0)


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_few_shot_cli_end_to_end_and_resume(tmp_path, beir_dir, minilm_dir, capsys):
    model = make_tiny_bert(tmp_path / "tiny", minilm_dir, dropout=0.1)
    config = tmp_path / "fewshot.yaml"
    config.write_text(
        f"output_dir: {tmp_path / 'run'}\nmodel: {model}\nbatch_size: 2\nmax_steps: 4\nlr: 1.0e-3\n"
        f"precision: fp32\ncheckpoint_every: 2\nlog_every: 1\nprogress: false\nshared: false\n"
        f"data:\n  kind: pairs\n  beir_dir: {beir_dir}\n  bm25_negatives: 2\n"
    )
    assert spart_main(["train", "few-shot", "--config", str(config), "--max-steps", "2"]) == 0
    assert (tmp_path / "run" / "final" / "spart.json").is_file()
    assert json.loads((tmp_path / "run" / "final" / "spart.json").read_text())["shared"] is False
    # --resume continues from the step-2 checkpoint to 4
    assert spart_main(["train", "few-shot", "--config", str(config), "--resume"]) == 0
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["step", "1", "2", "3", "4"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert spart_main(["train", "nonexistent-method"]) == 2
    assert "unknown training method" in capsys.readouterr().err
    (tmp_path / "c.yaml").write_text("output_dir: x\nmodel: m\nbogus: 1\ndata: {kind: pairs, beir_dir: b}\n")
    assert spart_main(["train", "spider", "--config", str(tmp_path / "c.yaml")]) == 2
    assert "bogus" in capsys.readouterr().err
    assert spart_main(["train", "spider", "--config", str(tmp_path / "nope.yaml")]) == 2
