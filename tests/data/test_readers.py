"""Tests for spart.data.readers: happy paths, DPR quoting, and file:line errors on malformed input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from spart.data import (
    Passage,
    QAPair,
    Query,
    passages_to_documents,
    read_beir_corpus,
    read_beir_qrels,
    read_beir_queries,
    read_dpr_passages,
    read_dpr_qa,
    read_passages,
    read_questions,
)


def write_dpr_tsv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", "text", "title"])
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_read_dpr_passages_roundtrips_quoted_fields(tmp_path):
    rows = [
        ("1", 'He said "hello" to her', "Greeting"),
        ("2", "plain text, with commas", 'The "Quoted" Title'),
    ]
    path = write_dpr_tsv(tmp_path / "p.tsv", rows)
    # The writer really did quote and double the inner quotes, as DPR's psgs_w100.tsv does.
    assert '"He said ""hello"" to her"' in path.read_text()
    assert list(read_dpr_passages(path)) == [Passage(*r) for r in rows]


def test_read_dpr_passages_is_lazy(tmp_path):
    path = write_dpr_tsv(tmp_path / "p.tsv", [("1", "a", "t")])
    iterator = read_dpr_passages(path)
    path.unlink()  # nothing is opened until the first passage is asked for
    with pytest.raises(FileNotFoundError):
        next(iterator)


def test_read_dpr_passages_bad_header(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("pid\ttext\ttitle\n1\ta\tb\n")
    with pytest.raises(ValueError, match=r"p\.tsv:1: expected header"):
        list(read_dpr_passages(path))


def test_read_dpr_passages_names_line_of_bad_row(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("id\ttext\ttitle\n1\ta\tb\n2\tonly two\n")
    with pytest.raises(ValueError, match=r"p\.tsv:3: expected 3 tab-separated fields"):
        list(read_dpr_passages(path))


def test_read_dpr_passages_empty_id(tmp_path):
    path = tmp_path / "p.tsv"
    path.write_text("id\ttext\ttitle\n\ta\tb\n")
    with pytest.raises(ValueError, match=r"p\.tsv:2: empty passage id"):
        list(read_dpr_passages(path))


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.tsv"):
        list(read_dpr_passages(tmp_path / "nope.tsv"))


def test_read_beir_corpus_file_and_directory(tmp_path):
    records = [{"_id": "d1", "title": "T1", "text": "x"}, {"_id": "d2", "text": "y"}]
    write_jsonl(tmp_path / "corpus.jsonl", records)
    expected = [Passage("d1", "x", "T1"), Passage("d2", "y", "")]
    assert list(read_beir_corpus(tmp_path / "corpus.jsonl")) == expected
    assert list(read_beir_corpus(tmp_path)) == expected


def test_read_beir_corpus_invalid_json_names_line(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "d1", "text": "x"}\n{"_id": "d2", "text": \n')
    with pytest.raises(ValueError, match=r"corpus\.jsonl:2: invalid JSON"):
        list(read_beir_corpus(path))


def test_read_beir_corpus_missing_id_names_line(tmp_path):
    path = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "a", "text": "x"}, {"text": "y"}])
    with pytest.raises(ValueError, match=r"corpus\.jsonl:2: missing field '_id'"):
        list(read_beir_corpus(path))


def test_read_passages_dispatch(tmp_path):
    tsv = write_dpr_tsv(tmp_path / "p.tsv", [("1", "a", "t")])
    jsonl = write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "2", "text": "b", "title": "u"}])
    assert list(read_passages(tsv)) == [Passage("1", "a", "t")]
    assert list(read_passages(jsonl)) == [Passage("2", "b", "u")]
    assert list(read_passages(tmp_path)) == [Passage("2", "b", "u")]
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(ValueError, match="unknown corpus format"):
        read_passages(tmp_path / "x.parquet")
    with pytest.raises(FileNotFoundError):
        read_passages(tmp_path / "missing.xml")


def test_read_dpr_qa(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text('Who wrote "Hamlet"?\t["Shakespeare", "William Shakespeare"]\nWhat is 2+2?\t["4"]\n')
    assert list(read_dpr_qa(path)) == [
        QAPair('Who wrote "Hamlet"?', ["Shakespeare", "William Shakespeare"]),
        QAPair("What is 2+2?", ["4"]),
    ]


def test_read_dpr_qa_accepts_python_repr_answers(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text("q1\t['a', \"b's\"]\n")
    assert list(read_dpr_qa(path)) == [QAPair("q1", ["a", "b's"])]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('q1\t["a"]\nq2\tnot a list\n', r"qa\.csv:2: answer column is not a JSON list"),
        ('q1\t{"a": 1}\n', r"qa\.csv:1: answer column must be a list of strings"),
        ("q1\n", r"qa\.csv:1: expected 'question<TAB>\[answers\]'"),
        ('\t["a"]\n', r"qa\.csv:1: empty question"),
    ],
)
def test_read_dpr_qa_errors(tmp_path, content, message):
    path = tmp_path / "qa.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        list(read_dpr_qa(path))


def test_read_beir_queries_and_qrels(tmp_path):
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "how?"}, {"_id": 7, "text": "why?"}])
    assert list(read_beir_queries(tmp_path)) == [Query("q1", "how?"), Query("7", "why?")]
    qrels_path = tmp_path / "test.tsv"
    qrels_path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\n7\td3\t0\n")
    assert read_beir_qrels(qrels_path) == {"q1": {"d1": 1, "d2": 2}, "7": {"d3": 0}}


def test_read_beir_qrels_errors(tmp_path):
    path = tmp_path / "qrels.tsv"
    path.write_text("q\td\ts\n")
    with pytest.raises(ValueError, match=r"qrels\.tsv:1: expected header"):
        read_beir_qrels(path)
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n")
    with pytest.raises(ValueError, match=r"qrels\.tsv:2: score must be an integer"):
        read_beir_qrels(path)


def test_read_questions_all_formats(tmp_path):
    txt = tmp_path / "q.txt"
    txt.write_text("first question?\n\n  second one  \n")
    assert list(read_questions(txt)) == ["first question?", "second one"]
    csv_path = tmp_path / "qa.csv"
    csv_path.write_text('q one\t["a"]\nq two\t["b"]\n')
    assert list(read_questions(csv_path)) == ["q one", "q two"]
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "1", "text": "beir q"}])
    assert list(read_questions(tmp_path / "queries.jsonl")) == ["beir q"]
    assert list(read_questions(tmp_path)) == ["beir q"]


def test_passages_to_documents():
    docs = list(passages_to_documents([Passage("wiki:1", "some text", "A Title")]))
    assert len(docs) == 1
    assert docs[0].id == "wiki:1"
    assert docs[0].content == "some text"
    assert docs[0].meta == {"title": "A Title"}


@pytest.mark.shared_data
def test_shared_data_counts(shared_data):
    passages = list(read_passages(shared_data / "wiki" / "passages.tsv"))
    assert len(passages) == 15521
    assert passages[0].id == "wiki:1" and passages[-1].id == "wiki:15521"
    # A quoted field (line 1235 of the file) comes back unquoted, its doubled quotes single again.
    by_id = {p.id: p for p in passages}
    assert 'choppy or "skippy" movement' in by_id["wiki:1234"].text
    assert not by_id["wiki:1234"].text.startswith('"')
    assert len(list(read_dpr_qa(shared_data / "wiki" / "trivia-test.csv"))) == 133
    assert len(list(read_passages(shared_data / "pydocs"))) == 15269
    assert len(list(read_beir_queries(shared_data / "pydocs"))) == 175
    qrels = read_beir_qrels(shared_data / "pydocs" / "qrels" / "test.tsv")
    assert len(qrels) == 77 and sum(len(v) for v in qrels.values()) == 148
