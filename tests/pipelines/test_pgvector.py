"""PostgreSQL + pgvector as a spart store, against a real server (``pg_url`` fixture; CI starts one)."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from haystack import Document

from spart.cli import main
from spart.components.embedders import SpiderDocumentEmbedder
from spart.pipelines import build_store, load_pipeline, read_build_info, retrieve
from spart.pipelines.pgvector import split_store_url

WORDS = [
    "satellite",
    "orbit",
    "moon",
    "tide",
    "galaxy",
    "star",
    "planet",
    "comet",
    "rocket",
    "launch",
    "shakespeare",
    "tragedy",
    "poem",
    "king",
    "castle",
    "river",
    "bridge",
    "mountain",
    "forest",
    "winter",
    "bingo",
    "caller",
    "ducks",
    "number",
    "spinning",
    "device",
    "angle",
    "velocity",
]
QUESTIONS = [
    "which satellite orbits the moon?",
    "who wrote the tragedy about a king?",
    "spinning device angle",
    "bingo caller number",
    "river bridge in winter",
]


def corpus(n: int = 60) -> list[Document]:
    rng = np.random.default_rng(7)
    return [
        Document(id=f"p:{i}", content=" ".join(rng.choice(WORDS, size=12)), meta={"title": f"passage {i}"})
        for i in range(n)
    ]


def _embedder(model_dir):
    return SpiderDocumentEmbedder(model=str(model_dir), device="cpu", precision="fp32", progress_bar=False)


@pytest.fixture(scope="module")
def pg_store(pg_url, minilm_dir) -> str:
    """A table of the 60 passages above, built by build_store with the packaged MiniLM (a real model)."""
    url = f"{pg_url}#t_{uuid.uuid4().hex[:10]}"
    build_store(corpus(), url, _embedder(minilm_dir), chunk_size=16, progress=False, corpus_info={"name": "c60"})
    return url


@pytest.fixture(scope="module")
def faiss_store(tmp_path_factory, minilm_dir):
    path = tmp_path_factory.mktemp("stores") / "c60"
    build_store(corpus(), path, _embedder(minilm_dir), chunk_size=16, progress=False)
    return path


@pytest.mark.parametrize("strategy", ["exact_nearest_neighbor", "hnsw"])
def test_same_top10_as_faiss_flat(pg_store, faiss_store, strategy):
    faiss = load_pipeline("dense_qa", store=faiss_store, top_k=10)
    pg = load_pipeline("dense_qa_pgvector", store=pg_store, top_k=10)
    for _, instance in pg.walk():
        if hasattr(instance, "document_store"):
            instance.document_store.search_strategy = strategy
    for question in QUESTIONS:
        expected = retrieve(faiss, question)
        got = retrieve(pg, question)
        np.testing.assert_allclose([d.score for d in got], [d.score for d in expected], rtol=1e-5)
        # Same ids in the same order, except where float32 rounding may swap two (near-)tied scores.
        all_scores = {d.id: d.score for d in retrieve(faiss, question, top_k=60)}
        for mine, theirs in zip(got, expected):
            assert mine.id == theirs.id or abs(all_scores[mine.id] - theirs.score) <= 1e-5 * abs(theirs.score), question
            assert all_scores[mine.id] == pytest.approx(mine.score, rel=1e-5)
        assert sum(m.id == t.id for m, t in zip(got, expected)) >= 9


def test_build_record_sets_table_size_and_text_embedder(pg_store, minilm_dir):
    info = read_build_info(pg_store)
    assert info["documents"] == 60 and info["embedding_dim"] == 384 and info["corpus"] == {"name": "c60"}
    assert info["embedder"] == _embedder(minilm_dir).to_dict()
    pipeline = load_pipeline("dense_qa_pgvector", store=pg_store)
    store = pipeline.get_component("dense_retriever").document_store
    table = split_store_url(pg_store)[1]
    assert (store.table_name, store.embedding_dimension, store.hnsw_index_name) == (table, 384, f"{table}_hnsw")
    assert store.vector_function == "inner_product" and store.recreate_table is False
    assert pipeline.get_component("text_embedder").model == str(minilm_dir)


def test_ef_search_covers_the_retrieval_depth(pg_store):
    pipeline = load_pipeline("hybrid_qa_pgvector", store=pg_store, components={"dense_retriever": {"top_k": 250}})
    assert pipeline.get_component("dense_retriever").document_store.hnsw_ef_search >= 250
    docs = pipeline.get_component("dense_retriever").run(query_embedding=[0.05] * 384)["documents"]
    assert len(docs) == 60  # the whole table: HNSW did not stop at pgvector's default ef_search of 40


def test_loading_twice_keeps_the_table(pg_store):
    for _ in range(2):
        pipeline = load_pipeline("dense_qa_pgvector", store=pg_store)
        assert pipeline.get_component("dense_retriever").document_store.count_documents() == 60


def test_hybrid_fuses_dense_and_keyword_lists(pg_store):
    docs = retrieve(load_pipeline("hybrid_qa_pgvector", store=pg_store, top_k=5), "satellite moon")
    assert len(docs) == 5
    scores = docs[0].meta["retriever_scores"]
    assert set(scores) == {"dense", "keyword"}
    assert any(d.meta["retriever_scores"]["keyword"] is not None for d in docs)  # both words occur in the corpus


def test_existing_table_needs_overwrite_and_failed_rebuild_keeps_it(pg_store, minilm_dir):
    with pytest.raises(FileExistsError, match="already exists"):
        build_store(corpus(3), pg_store, _embedder(minilm_dir), progress=False)

    def broken():
        yield from corpus(3)
        yield Document(id="broken", content="   ")

    with pytest.raises(ValueError):
        build_store(broken(), pg_store, _embedder(minilm_dir), overwrite=True, progress=False)
    assert read_build_info(pg_store)["documents"] == 60
    assert (
        load_pipeline("dense_qa_pgvector", store=pg_store)
        .get_component("dense_retriever")
        .document_store.count_documents()
        == 60
    )


def test_clear_errors(pg_url, faiss_store, pg_store):
    with pytest.raises(FileNotFoundError, match="no table 'missing_table'.*spart index"):
        load_pipeline("dense_qa_pgvector", store=f"{pg_url}#missing_table")
    with pytest.raises(ValueError, match="no PgvectorDocumentStore"):
        load_pipeline("dense_qa", store=pg_store)
    with pytest.raises(ValueError, match="searches PostgreSQL"):
        load_pipeline("dense_qa_pgvector", store=faiss_store)
    with pytest.raises(ValueError, match="table name"):
        split_store_url(f"{pg_url}#drop table")
    with pytest.raises(ValueError, match="cannot connect"):
        read_build_info("postgresql://nobody@127.0.0.1:1/none#t")


def test_packaged_yaml_never_recreates_tables():
    from spart.pipelines import pipeline_path

    for name in ("dense_qa_pgvector", "hybrid_qa_pgvector"):
        text = pipeline_path(name).read_text()
        assert "recreate_table: false" in text and "recreate_table: true" not in text


def test_cli_index_then_query(tmp_path, pg_url, tiny_bert_dir, capsys):
    tsv = tmp_path / "passages.tsv"
    tsv.write_text("id\ttext\ttitle\n" + "".join(f"{d.id}\t{d.content}\t{d.meta['title']}\n" for d in corpus(20)))
    url = f"{pg_url}#cli_{uuid.uuid4().hex[:8]}"
    assert (
        main(["index", str(tsv), "--store", url, "--model", str(tiny_bert_dir), "--device", "cpu", "--no-progress"])
        == 0
    )
    assert main(["index", str(tsv), "--store", url, "--model", str(tiny_bert_dir), "--no-progress"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["query", "satellite moon", "--store", url, "--retriever", "hybrid", "--top-k", "3", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert len(answer["results"]) == 3 and set(answer["retrievers"]) == {"dense_retriever", "keyword_retriever"}
    assert main(["query", "satellite", "--store", url, "--retriever", "bm25"]) == 2
    assert "needs a store directory" in capsys.readouterr().err
