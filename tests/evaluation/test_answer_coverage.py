"""benchmarks/answer_coverage.py: the top-k ceiling of a DPR data set (questions with an answer anywhere)."""

from __future__ import annotations

import json

import pytest
from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def answer_coverage():
    return load_benchmark("answer_coverage")


TEXTS = [
    "Richard Nixon was the 37th president.",
    "Nixon visited China in 1972; Richard Nixon resigned in 1974.",
    "The Andromeda Galaxy is the nearest major galaxy.",
]


def test_coverage_counts_the_passages_with_an_answer_as_dpr_matches(answer_coverage):
    answers = [["Richard Nixon"], ["andromeda galaxy", "M31"], ["Edwin Hubble"], ["Nix"]]
    counts = answer_coverage.coverage(answers, TEXTS)
    assert counts.tolist() == [2, 1, 0, 0]  # case-insensitive token match; "Nix" is no token of "Nixon"


def test_main_writes_the_ceiling(answer_coverage, tmp_path, capsys):
    (tmp_path / "passages.tsv").write_text(
        "id\ttext\ttitle\n" + "".join(f"w:{i}\t{text}\tT{i}\n" for i, text in enumerate(TEXTS)), encoding="utf-8"
    )
    (tmp_path / "trivia-test.csv").write_text(
        'Who was the 37th president?\t["Richard Nixon"]\nWho names the telescope?\t["Edwin Hubble"]\n'
        'Nearest major galaxy?\t["The Andromeda Galaxy"]\n',
        encoding="utf-8",
    )
    out = tmp_path / "coverage.json"
    assert answer_coverage.main(["--dataset", str(tmp_path), "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert (report["questions"], report["with_an_answer_passage"], report["ceiling_percent"]) == (3, 2, 66.7)
    assert [q["answer_passages"] for q in report["per_question"]] == [2, 0, 1]
    assert json.loads(capsys.readouterr().out)["ceiling_percent"] == 66.7


def test_main_names_a_missing_split(answer_coverage, tmp_path):
    (tmp_path / "passages.tsv").write_text("id\ttext\ttitle\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        answer_coverage.main(["--dataset", str(tmp_path), "--split", "dev"])
