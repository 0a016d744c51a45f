"""`spart eval` and `spart tune-fusion` end to end on a tiny corpus with a real FaissDocumentStore pipeline."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from spart.cli import main

PASSAGES = [
    ("p1", "Richard Nixon was the 37th president of the United States.", "Richard Nixon"),
    ("p2", "The Eiffel Tower is a wrought-iron tower in Paris, France.", "Eiffel Tower"),
    ("p3", "Mount Everest is the highest mountain above sea level.", "Mount Everest"),
    ("p4", "The Hubble telescope was named after an astronomer.", "Edwin Hubble"),
]
QA = {
    "test": [
        ("Who was the 37th president?", ["Richard Nixon"]),
        ("Which is the highest mountain?", ["Mount Everest"]),
        ("Who is the Hubble telescope named after?", ["Edwin Hubble"]),
    ],
    "train": [("Where is the Eiffel Tower?", ["Paris"]), ("Who was president number 37?", ["Nixon"])],
}


@pytest.fixture
def wiki(tmp_path) -> Path:
    directory = tmp_path / "wiki"
    directory.mkdir()
    with (directory / "passages.tsv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["id", "text", "title"])
        writer.writerows(PASSAGES)
    for split, rows in QA.items():
        (directory / f"trivia-{split}.csv").write_text("".join(f"{q}\t{json.dumps(a)}\n" for q, a in rows))
    return directory


def make_store(tmp_path: Path, wiki: Path, dim: int = 4):
    import numpy as np

    from spart.components.document_stores import FaissDocumentStore
    from spart.data import passages_to_documents, read_passages

    docs = list(passages_to_documents(read_passages(wiki / "passages.tsv")))
    rng = np.random.default_rng(0)
    docs = [replace(doc, embedding=rng.normal(size=dim).astype("float32").tolist()) for doc in docs]
    store = FaissDocumentStore(path=str(tmp_path / "store"), embedding_dim=dim)
    store.write_documents(docs)
    store.save()
    return store


def bm25_yaml(tmp_path: Path, wiki: Path) -> Path:
    from haystack import Pipeline

    from spart.components.retrievers import BM25Retriever

    pipeline = Pipeline()
    pipeline.add_component("retriever", BM25Retriever(make_store(tmp_path, wiki), top_k=10))
    path = tmp_path / "bm25.yaml"
    path.write_text(pipeline.dumps())
    return path


def test_eval_two_systems_writes_json_runs_and_plot(tmp_path, wiki, capsys):
    yaml_path = bm25_yaml(tmp_path, wiki)
    out = tmp_path / "res" / "wiki.json"
    plot = tmp_path / "res" / "wiki.png"
    code = main(
        [
            "eval",
            "--pipeline",
            f"bm25={yaml_path}",
            "--pipeline",
            f"again={yaml_path}",
            "--dataset",
            str(wiki),
            "--store",
            str(tmp_path / "store"),
            "--top-k",
            "1,2",
            "--depth",
            "3",
            "--out",
            str(out),
            "--plot",
            str(plot),
            "--no-progress",
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "bm25" in table and "again" in table and "top1" in table
    payload = json.loads(out.read_text())
    systems = {s["system"]: s for s in payload["systems"]}
    # Nixon and Everest are found first; the Hubble answer is only in a title, so never a hit
    assert systems["bm25"]["summary"] == {"top1": pytest.approx(2 / 3), "top2": pytest.approx(2 / 3)}
    assert len(systems["bm25"]["curve"]) == 3
    assert payload["significance"]["p_values"]["again"]["top1"] == 1.0
    lines = (out.parent / "wiki.bm25.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["doc_ids"][0] == "p1"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_errors_are_one_line(tmp_path, wiki, capsys):
    make_store(tmp_path, wiki)
    store = ["--store", str(tmp_path / "store")]
    assert main(["eval", "--pipeline", str(tmp_path / "missing.yaml"), "--dataset", str(wiki), *store]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert main(["eval", "--pipeline", "x.yaml"]) == 2
    assert "--dataset" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("components: [unclosed\n")
    assert main(["eval", "--pipeline", str(bad), "--dataset", str(wiki), *store]) == 2
    assert main(["eval", "--pipeline", "no_such_pipeline", "--dataset", str(wiki), *store]) == 2
    assert "no_such_pipeline" in capsys.readouterr().err


def test_eval_rejects_bad_top_k(wiki):
    with pytest.raises(SystemExit):
        main(["eval", "--pipeline", "x.yaml", "--dataset", str(wiki), "--top-k", "0,5"])


@pytest.mark.parametrize(
    ("command", "value"),
    [("eval", "0"), ("eval", "-3"), ("eval", "ten"), ("tune-fusion", "0"), ("tune-fusion", "-1")],
)
def test_depth_must_be_positive(wiki, capsys, command, value):
    # 0 used to fall back to the default through a falsy `or`; every non-positive depth is now refused
    with pytest.raises(SystemExit) as info:
        main([command, "--pipeline", "x.yaml", "--dataset", str(wiki), "--depth", value])
    assert info.value.code == 2
    assert f"argument --depth: expected a positive integer, got '{value}'" in capsys.readouterr().err


def test_tune_fusion_cli_refuses_test_and_saves_tuned_pipeline(tmp_path, wiki, capsys):
    from haystack import Pipeline

    from spart.components.fusers import HybridScoreFuser
    from spart.components.retrievers import BM25Retriever

    store = make_store(tmp_path, wiki)
    pipeline = Pipeline()
    pipeline.add_component("bm25_a", BM25Retriever(store, top_k=10))
    pipeline.add_component("bm25_b", BM25Retriever(store, top_k=10))
    pipeline.add_component("fuser", HybridScoreFuser(mode="rrf", input_names=["a", "b"]))
    pipeline.connect("bm25_a.documents", "fuser.a")
    pipeline.connect("bm25_b.documents", "fuser.b")
    yaml_path = tmp_path / "hybrid.yaml"
    yaml_path.write_text(pipeline.dumps())

    assert (
        main(
            [
                "tune-fusion",
                "--pipeline",
                str(yaml_path),
                "--dataset",
                str(wiki),
                "--split",
                "test",
                "--store",
                str(tmp_path / "store"),
            ]
        )
        == 2
    )
    assert "not on test" in capsys.readouterr().err

    tuned = tmp_path / "tuned.yaml"
    out = tmp_path / "tuning.json"
    assert (
        main(
            [
                "tune-fusion",
                "--pipeline",
                str(yaml_path),
                "--dataset",
                str(wiki),
                "--modes",
                "convex_minmax",
                "--store",
                str(tmp_path / "store"),
                "--objective",
                "top1",
                "--depth",
                "3",
                "--out",
                str(out),
                "--save-pipeline",
                str(tuned),
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["split"] == "train" and len(result["candidates"]) == 21
    assert result["best"]["objective"] == pytest.approx(1.0)  # both train questions answered at rank 1
    reloaded = Pipeline.loads(tuned.read_text(), allowed_modules=["spart"])
    assert reloaded.get_component("fuser").mode == "convex_minmax"
    assert reloaded.get_component("fuser").weights == result["best"]["weights"]


def test_eval_packaged_pipelines_build_and_reuse_a_cached_store(tmp_path, wiki, tiny_bert_dir, capsys):
    """bm25_qa / dense_qa / hybrid_qa on a store that eval builds itself (tiny random BERT), then reuses."""
    cache = tmp_path / "cache"
    args = [
        "eval",
        "--pipeline",
        "bm25_qa",
        "--pipeline",
        "dense_qa",
        "--pipeline",
        "hybrid_qa",
        "--dataset",
        str(wiki),
        "--model",
        str(tiny_bert_dir),
        "--cache-dir",
        str(cache),
        "--top-k",
        "1,4",
        "--depth",
        "4",
        "--out",
        str(tmp_path / "r.json"),
        "--no-progress",
    ]
    assert main(args) == 0
    first = json.loads((tmp_path / "r.json").read_text())
    stores = list((cache / "stores").glob("*/*/spart-build.json"))
    embeddings = list((cache / "embeddings").glob("*/*/embeddings.npy"))
    assert len(stores) == 1 and len(embeddings) == 1
    mtime = embeddings[0].stat().st_mtime_ns
    assert main(args) == 0
    assert embeddings[0].stat().st_mtime_ns == mtime  # nothing re-encoded
    second = json.loads((tmp_path / "r.json").read_text())
    assert [s["summary"] for s in first["systems"]] == [s["summary"] for s in second["systems"]]
    summaries = {s["system"]: s["summary"] for s in first["systems"]}
    # with all 4 passages retrieved, every answerable question (2 of 3) is found by every system
    assert all(v["top4"] == pytest.approx(2 / 3) for v in summaries.values())
    assert summaries["bm25_qa"]["top1"] == pytest.approx(2 / 3)


def test_tuned_packaged_hybrid_round_trip(tmp_path, wiki, tiny_bert_dir):
    """tune-fusion on hybrid_qa (train split) saves a pipeline that eval then scores on test with those weights."""
    cache = ["--model", str(tiny_bert_dir), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    tuned = tmp_path / "tuned.yaml"
    out = tmp_path / "tuning.json"
    assert (
        main(
            [
                "tune-fusion",
                "--pipeline",
                "hybrid_qa",
                "--dataset",
                str(wiki),
                "--modes",
                "convex_minmax",
                "--depth",
                "4",
                "--out",
                str(out),
                "--save-pipeline",
                str(tuned),
                *cache,
            ]
        )
        == 0
    )
    best = json.loads(out.read_text())["best"]
    assert (
        main(
            [
                "eval",
                "--pipeline",
                f"tuned={tuned}",
                "--dataset",
                str(wiki),
                "--top-k",
                "1,4",
                "--depth",
                "4",
                "--out",
                str(tmp_path / "r.json"),
                *cache,
            ]
        )
        == 0
    )
    from spart.pipelines import load_pipeline

    fuser = load_pipeline(tuned).get_component("fuser")
    assert (fuser.mode, fuser.weights) == ("convex_minmax", best["weights"])


def test_component_overrides_go_to_the_pipelines_that_have_them(tmp_path, wiki, tiny_bert_dir, tiny_causal_dir, capsys):
    """dense_qa beside dense_expand_qa with --set components={expander: ...}: dense_qa has no expander and runs
    as it is; a component no evaluated pipeline has is an error before any store is built."""
    expander = f"components={{expander: {{model: {tiny_causal_dir}, max_new_tokens: 3, precision: fp32}}}}"
    common = ["--dataset", str(wiki), "--model", str(tiny_bert_dir), "--cache-dir", str(tmp_path / "cache")]
    out = tmp_path / "r.json"
    args = ["eval", "--pipeline", "dense_qa", "--pipeline", "dense_expand_qa", "--set", expander, *common]
    assert main([*args, "--top-k", "1,4", "--depth", "4", "--out", str(out), "--no-progress"]) == 0
    systems = {s["system"] for s in json.loads(out.read_text())["systems"]}
    assert systems == {"dense_qa", "dense_expand_qa"}
    typo = "components={expandr: {max_new_tokens: 3}}"
    assert main(["eval", "--pipeline", "dense_qa", "--pipeline", "dense_expand_qa", "--set", typo, *common]) == 2
    err = capsys.readouterr().err
    assert "expandr" in err and "no evaluated pipeline" in err


def test_eval_indexes_the_corpus_with_the_model_each_pipeline_names(tmp_path, wiki, tiny_bert_dir, caplog):
    """Two pipeline files naming two different models (as `spart adapt` writes for an adapted model): without
    --model, each is scored over an index built with its own model, never over another model's index."""
    import logging
    import shutil

    import torch
    from haystack.marshal import YamlMarshaller
    from transformers import BertConfig, BertModel

    from spart.pipelines import read_pipeline_dict
    from spart.pipelines.build import read_build_info

    other = tmp_path / "other-bert"
    shutil.copytree(tiny_bert_dir, other)
    torch.manual_seed(1)
    BertModel(BertConfig.from_pretrained(tiny_bert_dir)).save_pretrained(other)  # same shape, other weights
    files = {}
    for name, model in (("first", tiny_bert_dir), ("second", other)):
        data = read_pipeline_dict("dense_qa")
        data["components"]["text_embedder"]["init_parameters"]["model"] = str(model)
        files[name] = tmp_path / f"{name}.yaml"
        files[name].write_text(YamlMarshaller().marshal(data))
    cache = tmp_path / "cache"
    argv = ["eval", "--dataset", str(wiki), "--cache-dir", str(cache), "--depth", "4", "--top-k", "1,4"]
    for name, path in files.items():
        argv += ["--pipeline", f"{name}={path}"]
    with caplog.at_level(logging.WARNING):
        assert main([*argv, "--out", str(tmp_path / "r.json"), "--no-progress"]) == 0
    assert not [r for r in caplog.records if "embedding space" in r.getMessage()]
    built = sorted(
        str(read_build_info(p.parent)["embedder"]["init_parameters"]["model"])
        for p in (cache / "stores").glob("*/*/spart-build.json")
    )
    assert built == sorted([str(tiny_bert_dir), str(other)])
