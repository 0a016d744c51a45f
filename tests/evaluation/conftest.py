"""Tiny DPR and BEIR data sets written to disk, and a tiny BM25 pipeline over them."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

# spart runs offline; Haystack would otherwise try to send usage telemetry.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

PASSAGES = [
    ("p1", "Richard Nixon was the 37th president of the United States.", "Richard Nixon"),
    ("p2", "The Eiffel Tower is a wrought-iron tower in Paris.", "Eiffel Tower"),
    ("p3", "Paris is the capital of France and its largest city.", "Paris"),
    ("p4", "The telescope was named after an astronomer.", "Edwin Hubble"),  # answer only in the title
    ("p5", "Mount Everest is the highest mountain above sea level.", "Mount Everest"),
]
QA = [
    ("Who was the 37th president of the United States?", ["Richard Nixon"]),
    ("Which city is the Eiffel Tower in?", ["Paris"]),
    ("Which astronomer was the telescope named after?", ["Edwin Hubble"]),
    ("What is the highest mountain?", ["Mount Everest", "Everest"]),
]


@pytest.fixture
def dpr_dir(tmp_path) -> Path:
    directory = tmp_path / "wiki"
    directory.mkdir()
    with (directory / "passages.tsv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", "text", "title"])
        writer.writerows(PASSAGES)
    for split, rows in (("test", QA), ("train", QA[:2])):
        (directory / f"trivia-{split}.csv").write_text("".join(f"{q}\t{json.dumps(a)}\n" for q, a in rows))
    return directory


@pytest.fixture
def beir_dir(tmp_path) -> Path:
    directory = tmp_path / "docs"
    (directory / "qrels").mkdir(parents=True)
    corpus = [
        {"_id": "d1", "title": "Lists", "text": "A list is a mutable sequence; append adds an item."},
        {"_id": "d2", "title": "Tuples", "text": "A tuple is an immutable sequence of values."},
        {"_id": "d3", "title": "Dicts", "text": "A dict maps keys to values; keys must be hashable."},
        {"_id": "d4", "title": "Sets", "text": "A set is an unordered collection of hashable items."},
    ]
    (directory / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    queries = [
        {"_id": "q1", "text": "how do I append an item to a list"},
        {"_id": "q2", "text": "which keys can a dict have"},
        {"_id": "q3", "text": "is a tuple immutable"},
    ]
    (directory / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (directory / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq2\td4\t1\n")
    (directory / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq3\td2\t1\n")
    return directory


@pytest.fixture
def bm25_pipeline():
    """Builds a Haystack in-memory BM25 pipeline over a corpus (content = text; title in meta)."""
    return _bm25_pipeline


def _bm25_pipeline(corpus_path: Path, top_k: int = 3):
    from haystack import Pipeline
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    from spart.data import passages_to_documents, read_passages

    store = InMemoryDocumentStore()
    store.write_documents(list(passages_to_documents(read_passages(corpus_path))))
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(store, top_k=top_k))
    return pipeline
