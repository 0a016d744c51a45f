"""load_pipeline and the packaged YAML pipelines: round trips, overrides, inputs/outputs, bad YAML."""

from __future__ import annotations

import pytest
from haystack import Pipeline
from haystack.core.errors import DeserializationError

from spart.pipelines import available_pipelines, load_pipeline, question_inputs, read_pipeline_dict, retrieve

PIPELINES = ["bm25_qa", "dense_qa", "hybrid_qa"]


def test_packaged_pipelines_are_listed():
    assert set(PIPELINES) <= set(available_pipelines())


@pytest.mark.parametrize("name", PIPELINES)
def test_yaml_round_trip(name, tiny_store):
    pipeline = load_pipeline(name, store=tiny_store)
    text = pipeline.dumps()
    again = Pipeline.loads(text, allowed_modules=["spart"])
    assert _graph(again) == _graph(pipeline)
    assert _graph(Pipeline.loads(again.dumps(), allowed_modules=["spart"])) == _graph(pipeline)
    assert sorted(again.graph.edges(keys=True)) == sorted(pipeline.graph.edges(keys=True))


def _graph(pipeline: Pipeline) -> dict:
    """The pipeline's dictionary with connections in a canonical order (Haystack orders them by insertion)."""
    data = pipeline.to_dict()
    data["connections"] = sorted(data["connections"], key=lambda c: (c["sender"], c["receiver"]))
    return data


def test_dumped_pipeline_reloads_with_another_store(tiny_store, tmp_path, tiny_bert_dir):
    import shutil

    dumped = tmp_path / "hybrid.yaml"
    dumped.write_text(load_pipeline("hybrid_qa", store=tiny_store).dumps())
    copy = tmp_path / "copy"
    shutil.copytree(tiny_store, copy)
    data = load_pipeline(dumped, store=copy).to_dict()["components"]
    for name in ("dense_retriever", "bm25_retriever"):  # separate (not anchored) store dicts, both updated
        assert data[name]["init_parameters"]["document_store"]["init_parameters"]["path"] == str(copy.resolve())
    assert data["text_embedder"]["init_parameters"]["model"] == str(tiny_bert_dir)


def test_plain_haystack_needs_the_spart_opt_in(tiny_store):
    text = load_pipeline("bm25_qa", store=tiny_store).dumps()
    with pytest.raises(DeserializationError, match="allowlist"):
        Pipeline.loads(text)


@pytest.mark.parametrize(
    ("name", "inputs", "output"),
    [
        ("bm25_qa", {"bm25_retriever": {"query"}}, "bm25_retriever"),
        ("dense_qa", {"text_embedder": {"text"}}, "dense_retriever"),
        ("hybrid_qa", {"text_embedder": {"text"}, "bm25_retriever": {"query"}}, "fuser"),
    ],
)
def test_documented_inputs_and_outputs(name, inputs, output, tiny_store):
    pipeline = load_pipeline(name, store=tiny_store)
    mandatory = {
        comp: {s for s, spec in sockets.items() if spec["is_mandatory"]} for comp, sockets in pipeline.inputs().items()
    }
    assert {c: s for c, s in mandatory.items() if s} == inputs
    assert set(pipeline.outputs()) == {output}
    question = "who wrote hamlet?"
    assert question_inputs(pipeline, question) == {c: {s: question for s in ss} for c, ss in inputs.items()}


def test_bm25_pipeline_finds_the_matching_passage(tiny_store):
    docs = retrieve(load_pipeline("bm25_qa", store=tiny_store), "two little ducks bingo")
    assert docs[0].id == "doc:5"
    assert [d.score for d in docs] == sorted((d.score for d in docs), reverse=True)


def test_hybrid_pipeline_fuses_both_retrievers(tiny_store):
    pipeline = load_pipeline("hybrid_qa", store=tiny_store, top_k=4)
    question = "first artificial satellite"
    keep = {"dense_retriever", "bm25_retriever"}
    result = pipeline.run(question_inputs(pipeline, question), include_outputs_from=keep)
    fused = result["fuser"]["documents"]
    dense = {d.id: d.score for d in result["dense_retriever"]["documents"]}
    bm25 = {d.id: d.score for d in result["bm25_retriever"]["documents"]}
    assert len(fused) == 4 and len(dense) == 6  # every tiny document is a dense candidate
    for doc in fused:
        assert doc.meta["retriever_scores"] == {"dense": dense.get(doc.id), "bm25": bm25.get(doc.id)}
        ranks = [r for r in (_rank(dense, doc.id), _rank(bm25, doc.id)) if r]
        assert doc.score == pytest.approx(sum(1 / (60 + r) for r in ranks))
    assert fused[0].id == "doc:3"  # first in BM25 and in the dense list's top ranks
    # The two retrievers search one shared store object.
    assert (
        pipeline.get_component("dense_retriever").document_store
        is pipeline.get_component("bm25_retriever").document_store
    )


def _rank(scores: dict, doc_id: str) -> int | None:
    order = sorted(scores, key=lambda d: -scores[d])
    return order.index(doc_id) + 1 if doc_id in scores else None


def test_retrieve_top_k_at_run_time(tiny_store):
    pipeline = load_pipeline("hybrid_qa", store=tiny_store)
    assert len(retrieve(pipeline, "galaxy", top_k=2)) == 2
    with pytest.raises(ValueError, match="non-empty"):
        retrieve(pipeline, "  ")


def test_store_build_record_picks_the_text_embedder(tiny_store, tiny_bert_dir):
    data = load_pipeline("dense_qa", store=tiny_store).to_dict()
    embedder = data["components"]["text_embedder"]
    assert embedder["type"].endswith("SpiderTextEmbedder")
    assert embedder["init_parameters"]["model"] == str(tiny_bert_dir)
    assert embedder["init_parameters"]["precision"] == "auto"  # device/precision stay the YAML's
    store = data["components"]["dense_retriever"]["init_parameters"]["document_store"]["init_parameters"]
    assert store["embedding_dim"] == 32 and store["path"] == str(tiny_store.resolve())


def test_a_model_other_than_the_stores_is_warned_about_a_copy_is_not(tiny_store, tiny_bert_dir, tmp_path, caplog):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_bert_dir, copy)
    other = tmp_path / "other"
    shutil.copytree(tiny_bert_dir, other)
    config = other / "config.json"
    config.write_text(config.read_text().replace("}", ', "note": "changed"}', 1))
    with caplog.at_level("WARNING", logger="spart.pipelines.loader"):
        load_pipeline("dense_qa", store=tiny_store, model=str(copy))
    assert "embedding space" not in caplog.text  # the same files under another name: the same model
    with caplog.at_level("WARNING", logger="spart.pipelines.loader"):
        load_pipeline("dense_qa", store=tiny_store, model=str(other))
    assert f"uses {other}: dense scores are only meaningful" in caplog.text


def test_overrides(tiny_store, tiny_bert_dir):
    data = load_pipeline(
        "hybrid_qa",
        store=tiny_store,
        method="art",
        model=str(tiny_bert_dir),
        device="cpu",
        top_k=3,
        fusion="weighted_raw",
        weights=[1.0, 0.1],
        components={"bm25_retriever": {"top_k": 7}},
    ).to_dict()["components"]
    assert data["text_embedder"]["type"].endswith("ARTTextEmbedder")
    assert data["text_embedder"]["init_parameters"]["device"] == "cpu"
    assert data["fuser"]["init_parameters"] | {} == {
        **data["fuser"]["init_parameters"],
        "mode": "weighted_raw",
        "weights": [1.0, 0.1],
        "top_k": 3,
    }
    assert data["bm25_retriever"]["init_parameters"]["top_k"] == 7
    assert data["dense_retriever"]["init_parameters"]["top_k"] == 100


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fusion": "max"}, ValueError, "unknown fusion mode"),
        ({"top_k": 0}, ValueError, "top_k"),
        ({"method": "dpr"}, ValueError, "method"),
        ({"components": {"nope": {}}}, ValueError, "no component named 'nope'"),
        ({"components": {"fuser": {"bogus": 1}}}, ValueError, "cannot build pipeline"),
    ],
)
def test_bad_overrides(kwargs, error, message, tiny_store):
    with pytest.raises(error, match=message):
        load_pipeline("hybrid_qa", store=tiny_store, **kwargs)


def test_overrides_that_do_not_apply(tiny_store):
    with pytest.raises(ValueError, match="no HybridScoreFuser"):
        load_pipeline("bm25_qa", store=tiny_store, fusion="rrf")
    with pytest.raises(ValueError, match="no text embedder"):
        load_pipeline("bm25_qa", store=tiny_store, model="x")


def test_missing_store_and_names(tmp_path):
    with pytest.raises(ValueError, match="store=<store directory>"):
        load_pipeline("bm25_qa")
    with pytest.raises(FileNotFoundError, match="store directory not found"):
        load_pipeline("bm25_qa", store=tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="unknown pipeline 'nope'"):
        load_pipeline("nope")
    with pytest.raises(FileNotFoundError, match="pipeline file not found"):
        load_pipeline(tmp_path / "absent.yaml")
    with pytest.raises(ValueError, match="not a FaissDocumentStore directory"):
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "file").write_text("x")
        load_pipeline("bm25_qa", store=tmp_path / "junk")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("components: [unclosed", "invalid YAML"),
        ("- just\n- a list\n", "not a pipeline definition"),
        ("components: {}\n", "not a pipeline definition"),
        ("components:\n  x: 3\n", "needs a 'type'"),
        ("components:\n  x:\n    type: a.B\n    init_parameters: 3\n", "init_parameters must be a mapping"),
    ],
)
def test_bad_yaml(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_pipeline_dict(path)
    assert str(path) in str(info.value)


def test_user_yaml_with_unknown_class(tmp_path, tiny_store):
    path = tmp_path / "mine.yaml"
    path.write_text("components:\n  x:\n    type: spart.nowhere.Missing\n    init_parameters: {}\nconnections: []\n")
    with pytest.raises(ValueError, match="cannot build pipeline"):
        load_pipeline(path)


def test_configure_pipeline_dict_refuses_unknown_overrides():
    from spart.pipelines import configure_pipeline_dict

    data = read_pipeline_dict("bm25_qa")
    with pytest.raises(ValueError, match=r"unknown pipeline overrides \['top_k'\]"):
        configure_pipeline_dict(data, top_k=3)
