"""FaissDocumentStore: Haystack conformance suite plus spart-specific behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from haystack import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.testing.document_store import CountDocumentsByFilterTest, DocumentStoreBaseExtendedTests

from spart.bm25 import segments
from spart.components.document_stores import FaissDocumentStore
from spart.components.document_stores.faiss import persistence
from spart.index import DenseIndex


def _assert_same_documents(received: list[Document], expected: list[Document]) -> None:
    """Equal documents, except that embeddings are compared at float32 precision (what FAISS stores)."""
    assert len(received) == len(expected)
    for got, want in zip(received, expected):
        assert got.id == want.id and got.content == want.content and got.meta == want.meta
        assert got.blob == want.blob and got.sparse_embedding == want.sparse_embedding
        if want.embedding is None:
            assert got.embedding is None
        else:
            np.testing.assert_array_equal(np.float32(got.embedding), np.float32(want.embedding))


class TestConformance(DocumentStoreBaseExtendedTests, CountDocumentsByFilterTest):
    """Haystack's own DocumentStore tests (base + delete_all / delete_by_filter / update_by_filter /
    count_documents_by_filter), run against an in-memory FaissDocumentStore."""

    @pytest.fixture
    def document_store(self) -> FaissDocumentStore:
        return FaissDocumentStore(embedding_dim=768)

    def assert_documents_are_equal(self, received, expected):
        _assert_same_documents(received, expected)

    def test_write_documents(self, document_store):
        doc = Document(content="test doc")
        assert document_store.write_documents([doc]) == 1
        with pytest.raises(DuplicateDocumentError):  # NONE behaves like FAIL
            document_store.write_documents([doc])
        self.assert_documents_are_equal(document_store.filter_documents(), [doc])


class TestConformanceOnDisk(TestConformance):
    """The same suite against a store opened on a directory (saved and re-opened before each test)."""

    @pytest.fixture
    def document_store(self, tmp_path) -> FaissDocumentStore:
        FaissDocumentStore(path=str(tmp_path / "store"), embedding_dim=768).save()
        return FaissDocumentStore.load(tmp_path / "store")


def _docs(n: int, dim: int = 4, seed: int = 0) -> list[Document]:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim)).astype(np.float32)
    return [
        Document(
            id=f"d{i}",
            content=f"document number {i} about topic{i % 3}",
            meta={"i": i, "title": f"T{i}"},
            embedding=emb[i].tolist(),
        )
        for i in range(n)
    ]


def test_embedding_retrieval_is_exact_inner_product():
    docs = _docs(50)
    store = FaissDocumentStore(embedding_dim=4)
    store.write_documents(docs)
    q = np.array([0.3, -1.0, 0.5, 2.0], dtype=np.float32)
    result = store.embedding_retrieval(q.tolist(), top_k=5)
    scores = np.array([d.embedding for d in docs], dtype=np.float32) @ q
    want = np.argsort(-scores)[:5]
    assert [d.id for d in result] == [f"d{i}" for i in want]
    np.testing.assert_allclose([d.score for d in result], scores[want], rtol=1e-5)
    assert all(d.embedding is None for d in result)
    assert store.embedding_retrieval(q, top_k=5, return_embedding=True)[0].embedding is not None


def test_embedding_retrieval_with_filters_is_exact():
    docs = _docs(60)
    store = FaissDocumentStore(embedding_dim=4, factory="HNSW8")
    store.write_documents(docs)
    q = np.ones(4, dtype=np.float32)
    flt = {"field": "meta.i", "operator": ">=", "value": 40}
    result = store.embedding_retrieval(q, top_k=3, filters=flt)
    scores = np.array([d.embedding for d in docs[40:]], dtype=np.float32) @ q
    assert [d.id for d in result] == [f"d{40 + i}" for i in np.argsort(-scores)[:3]]


def test_documents_without_embedding_are_stored_but_not_dense_searchable():
    store = FaissDocumentStore(embedding_dim=2)
    store.write_documents([Document(id="a", content="alpha"), Document(id="b", content="beta", embedding=[1.0, 0.0])])
    assert store.count_documents() == 2
    assert [d.id for d in store.embedding_retrieval([1.0, 0.0], top_k=10)] == ["b"]
    assert [d.id for d in store.bm25_retrieval("alpha", top_k=10)] == ["a"]


def test_write_validation_is_atomic():
    store = FaissDocumentStore(embedding_dim=3)
    store.write_documents([Document(id="keep", content="x", embedding=[1.0, 0.0, 0.0])])
    bad = [Document(id="new", content="y", embedding=[1.0, 0.0, 0.0]), Document(id="bad", content="z", embedding=[1.0])]
    with pytest.raises(ValueError, match="dimension .*embedding_dim is 3"):
        store.write_documents(bad)
    with pytest.raises(ValueError, match="no content, no embedding and no blob"):
        store.write_documents([Document(id="new", content="y"), Document(id="empty", content="")])
    with pytest.raises(ValueError, match="NaN"):
        store.write_documents([Document(id="nan", content="y", embedding=[float("nan"), 0.0, 0.0])])
    with pytest.raises(DuplicateDocumentError):
        store.write_documents([Document(id="new", content="y"), Document(id="keep", content="dup")])
    assert [d.id for d in store.filter_documents()] == ["keep"]
    assert len(store._dense) == 1


def test_duplicate_policies_and_overwrite_updates_both_indexes():
    store = FaissDocumentStore(embedding_dim=2)
    store.write_documents([Document(id="x", content="old words", embedding=[1.0, 0.0])])
    assert store.write_documents([Document(id="x", content="skipped")], policy=DuplicatePolicy.SKIP) == 0
    assert store.bm25_retrieval("old", top_k=1)[0].id == "x"
    n = store.write_documents(
        [
            Document(id="x", content="new text", embedding=[0.0, 1.0]),
            Document(id="x", content="newest text", embedding=[0.0, 2.0]),
        ],
        policy=DuplicatePolicy.OVERWRITE,
    )
    assert n == 1 and store.count_documents() == 1
    assert store.filter_documents()[0].content == "newest text"
    assert store.bm25_retrieval("old", top_k=1) == []
    assert store.bm25_retrieval("newest", top_k=1)[0].id == "x"
    hit = store.embedding_retrieval([0.0, 1.0], top_k=5)
    assert [(d.id, d.score) for d in hit] == [("x", 2.0)]
    with pytest.raises(DuplicateDocumentError, match="more than once"):
        store.write_documents(
            [Document(id="y", content="a"), Document(id="y", content="b")], policy=DuplicatePolicy.FAIL
        )


def test_bm25_retrieval_tracks_writes_and_deletes_and_uses_title():
    store = FaissDocumentStore(embedding_dim=2, bm25_method="okapi")
    store.write_documents(
        [
            Document(id="1", content="the quick brown fox", meta={"title": "Foxes"}),
            Document(id="2", content="a lazy dog sleeps"),
            Document(id="3", content="dogs and foxes are friends"),
        ]
    )
    # "1" matches only through its title; "3" is shorter (3 tokens after stop words vs 4), so it ranks first
    assert [d.id for d in store.bm25_retrieval("foxes", top_k=5)] == ["3", "1"]
    store.delete_documents(["1"])
    assert [d.id for d in store.bm25_retrieval("foxes", top_k=5)] == ["3"]
    store.write_documents([Document(id="4", content="foxes foxes foxes")])
    result = store.bm25_retrieval("foxes", top_k=5)
    assert [d.id for d in result] == ["4", "3"] and result[0].score > result[1].score > 0
    flt = {"field": "id", "operator": "==", "value": "3"}
    assert [d.id for d in store.bm25_retrieval("foxes", top_k=5, filters=flt)] == ["3"]
    assert store.bm25_retrieval("the and", top_k=5) == []  # only stop words: empty result
    with pytest.raises(ValueError, match="non-empty string"):
        store.bm25_retrieval("   ", top_k=5)
    with pytest.raises(ValueError, match="top_k"):
        store.bm25_retrieval("fox", top_k=0)


def test_bm25_scores_match_rank_bm25_through_the_store():
    rank_bm25 = pytest.importorskip("rank_bm25")
    from spart.bm25 import Tokenizer

    texts = ["red apple pie", "green apple", "red red wine", "blue sky", "apple of my eye red"]
    store = FaissDocumentStore(embedding_dim=2, bm25_method="okapi")
    store.write_documents([Document(id=str(i), content=t) for i, t in enumerate(texts)])
    tok = Tokenizer()
    oracle = rank_bm25.BM25Okapi([tok(t) for t in texts]).get_scores(tok("red apple"))
    got = {d.id: d.score for d in store.bm25_retrieval("red apple", top_k=10)}
    for i, score in enumerate(oracle):
        if str(i) in got:
            assert got[str(i)] == pytest.approx(score, abs=1e-6)
        else:
            assert score == 0


def test_query_errors():
    store = FaissDocumentStore(embedding_dim=3)
    with pytest.raises(ValueError, match="shape \\(2,\\).*embedding_dim is 3"):
        store.embedding_retrieval([1.0, 2.0], top_k=1)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        store.embedding_retrieval([1.0, 2.0, 3.0], top_k=-1)
    assert store.embedding_retrieval([1.0, 2.0, 3.0], top_k=2) == []
    assert store.bm25_retrieval("anything", top_k=2) == []


def _checkpoints(path):
    return [p for p in (path / "index").iterdir() if p.is_dir()]


def test_save_and_reopen_round_trip(tmp_path):
    path = tmp_path / "store"
    store = FaissDocumentStore(path=str(path), embedding_dim=4, factory="HNSW8", bm25_method="okapi")
    docs = _docs(30)
    store.write_documents(docs)
    store.save()
    again = FaissDocumentStore(path=str(path), embedding_dim=4, factory="HNSW8", bm25_method="okapi")
    assert again.count_documents() == 30
    q = np.ones(4)
    assert [d.id for d in again.embedding_retrieval(q, 5)] == [d.id for d in store.embedding_retrieval(q, 5)]
    assert [d.id for d in again.bm25_retrieval("topic1", 5)] == [d.id for d in store.bm25_retrieval("topic1", 5)]
    loaded = FaissDocumentStore.load(path)
    assert loaded.to_dict() == again.to_dict()
    # later checkpoints replace the previous one; exactly one is left
    again.delete_documents(["d0"])
    again.save()
    assert FaissDocumentStore.load(path).count_documents() == 29
    assert len(_checkpoints(path)) == 1
    with pytest.raises(ValueError, match="embedding_dim=4.*embedding_dim=8"):
        FaissDocumentStore(path=str(path), embedding_dim=8, factory="HNSW8")


@pytest.mark.parametrize("factory", ["Flat", "HNSW8"])
def test_reopened_store_keeps_its_vectors_mapped_and_checkpoints_only_the_change(tmp_path, factory):
    # A reopened store maps its checkpointed vectors; writes and deletes go to the dense index's delta, and the
    # next checkpoint hard-links the unchanged vector file instead of rewriting it.
    path = tmp_path / "store"
    opts = {"embedding_dim": 4, "factory": factory, "ef_search": 64}  # HNSW searches exhaustively at this size
    store = FaissDocumentStore(path=str(path), **opts)
    store.write_documents(_docs(40))
    store.save()
    assert store._dense._mapped  # the writer maps what it checkpointed too
    first_dir, first = persistence.read_checkpoint(path)
    inode = (first_dir / first["dense"]["file"]).stat().st_ino
    again = FaissDocumentStore(path=str(path), **opts)
    again.write_documents(_docs(45, seed=1)[40:])
    again.delete_documents(["d3", "d41"])
    again.write_documents([Document(id="d3", content="back again", embedding=[5.0, 5.0, 5.0, 5.0])])
    assert again._dense._mapped and again._dense._delta_size == 5
    again.save()
    ckpt_dir, manifest = persistence.read_checkpoint(path)
    assert ckpt_dir != first_dir and not first_dir.exists()
    assert (ckpt_dir / manifest["dense"]["file"]).stat().st_ino == inode
    assert manifest["dense"]["header"]["delta"] and manifest["vectors"] == 44
    q = np.array([1.0, 0.5, -0.3, 2.0])
    rebuilt = FaissDocumentStore(embedding_dim=4)
    rebuilt.write_documents(again.filter_documents())
    want = [(d.id, round(d.score, 5)) for d in rebuilt.embedding_retrieval(q, 44)]
    for store_ in (again, FaissDocumentStore(path=str(path), **opts)):
        assert [(d.id, round(d.score, 5)) for d in store_.embedding_retrieval(q, 44)] == want
    assert again.embedding_retrieval(np.ones(4), 1)[0].id == "d3"


def test_writes_are_durable_without_save(tmp_path):
    path = tmp_path / "store"
    store = FaissDocumentStore(path=str(path), embedding_dim=4, bm25_method="okapi")
    store.write_documents(_docs(10))
    store.save()
    store.write_documents(_docs(14)[10:])
    store.delete_documents(["d1"])
    store.update_by_filter({"field": "id", "operator": "==", "value": "d2"}, {"title": "Zeppelin"})
    # a second process-like instance (own connection, own indexes) sees every returned write
    other = FaissDocumentStore(path=str(path), embedding_dim=4, bm25_method="okapi")
    assert other.count_documents() == 13
    assert [d.id for d in other.bm25_retrieval("zeppelin", top_k=3)] == ["d2"]
    q = np.array([1.0, 0.5, -0.3, 2.0])
    assert [(d.id, d.score) for d in other.embedding_retrieval(q, 13)] == [
        (d.id, d.score) for d in store.embedding_retrieval(q, 13)
    ]
    # and the first instance catches up with the second one's writes before searching
    other.write_documents([Document(id="late", content="zeppelin zeppelin", embedding=[9.0, 9.0, 9.0, 9.0])])
    assert store.bm25_retrieval("zeppelin", top_k=1)[0].id == "late"
    assert store.embedding_retrieval(np.ones(4), top_k=1)[0].id == "late"


def test_crash_mid_checkpoint_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "store"
    store = FaissDocumentStore(path=str(path), embedding_dim=4)
    store.write_documents(_docs(5))
    store.save()
    before = _checkpoints(path)
    store.write_documents(_docs(10)[5:])

    def crash(*args, **kwargs):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(DenseIndex, "write_file", crash)  # dies while writing the new checkpoint
    with pytest.raises(OSError, match="simulated"):
        store.save()
    monkeypatch.undo()
    assert _checkpoints(path) == before
    assert FaissDocumentStore.load(path).count_documents() == 10  # writes never depended on save()

    # a crash after the new checkpoint is complete, but before CHECKPOINT is switched
    real_write = persistence.write_bytes_atomic

    def crash_on_pointer(target, data):
        if target.name == persistence.POINTER:
            raise OSError("power cut (simulated)")
        return real_write(target, data)

    monkeypatch.setattr(persistence, "write_bytes_atomic", crash_on_pointer)
    with pytest.raises(OSError, match="power cut"):
        store.save()
    monkeypatch.undo()
    reopened = FaissDocumentStore.load(path)
    assert reopened.count_documents() == 10
    assert [d.id for d in reopened.embedding_retrieval(np.ones(4), 10)] == [
        d.id for d in store.embedding_retrieval(np.ones(4), 10)
    ]
    store.save()  # the next successful checkpoint removes the orphaned one
    assert FaissDocumentStore.load(path).count_documents() == 10
    assert len(_checkpoints(path)) == 1


def test_missing_and_corrupt_directories(tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="not found"):
        FaissDocumentStore.load(tmp_path / "nope")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a FaissDocumentStore directory"):
        FaissDocumentStore(path=str(tmp_path / "junk"))
    path = tmp_path / "store"
    store = FaissDocumentStore(path=str(path), embedding_dim=4)
    store.write_documents(_docs(3))
    store.save()
    want = [(d.id, d.score) for d in store.bm25_retrieval("document", 3)]
    store.close()
    # derived state is rebuilt from the database when its checkpoint is unusable
    (path / "index" / persistence.POINTER).write_text("{not json")
    with caplog.at_level("WARNING"):
        reopened = FaissDocumentStore.load(path)
    assert "rebuilt from the database" in caplog.text
    assert [(d.id, d.score) for d in reopened.bm25_retrieval("document", 3)] == want
    reopened.close()
    (path / persistence.DB_FILE).write_bytes(b"this is not sqlite" * 100)
    for suffix in ("-wal", "-shm"):
        (path / f"{persistence.DB_FILE}{suffix}").unlink(missing_ok=True)
    with pytest.raises(ValueError, match="corrupt"):
        FaissDocumentStore.load(path)
    with pytest.raises(ValueError, match="in memory"):
        FaissDocumentStore(embedding_dim=2).save()


def test_to_dict_from_dict():
    store = FaissDocumentStore(embedding_dim=16, factory="HNSW32", bm25_method="bm25+", bm25_stemmer="english")
    data = store.to_dict()
    assert data["type"] == "spart.components.document_stores.faiss.document_store.FaissDocumentStore"
    assert data["init_parameters"]["embedding_dim"] == 16
    assert data["init_parameters"]["bm25_method"] == "bm25+"
    again = FaissDocumentStore.from_dict(data)
    assert again.to_dict() == data
    with pytest.raises(ValueError, match="unknown BM25 method"):
        FaissDocumentStore(bm25_method="nope")


def test_from_dict_shares_one_open_store_per_directory(tmp_path):
    store = FaissDocumentStore(path=str(tmp_path / "s"), embedding_dim=4)
    data = store.to_dict()
    assert FaissDocumentStore.from_dict(data) is store
    assert (
        FaissDocumentStore.from_dict({**data, "init_parameters": {**data["init_parameters"], "bm25_k1": 1.2}})
        is not store
    )
    store.close()
    assert FaissDocumentStore.from_dict(data) is not store


def test_ivf_store_trains_on_first_write_or_fails_cleanly():
    store = FaissDocumentStore(embedding_dim=4, factory="IVF8,Flat", nprobe=8)
    with pytest.raises(ValueError, match="could not be trained"):
        store.write_documents(_docs(3))
    assert store.count_documents() == 0
    store.write_documents(_docs(300))
    assert store.count_documents() == 300
    assert len(store.embedding_retrieval(np.ones(4), top_k=7)) == 7


def test_bm25_index_is_checkpointed_and_reused(tmp_path):
    path = tmp_path / "store"
    store = FaissDocumentStore(path=str(path), embedding_dim=4, bm25_method="okapi")
    store.write_documents(_docs(20))
    store.save()  # the BM25 segments are part of the checkpoint
    want = [(d.id, d.score) for d in store.bm25_retrieval("topic2 number", top_k=5)]
    loaded = FaissDocumentStore.load(path)
    assert loaded._bm25.n_docs == 20
    loaded._tokenizer = _QueryOnlyTokenizer(loaded._tokenizer)  # any corpus re-tokenization would fail
    assert [(d.id, d.score) for d in loaded.bm25_retrieval("topic2 number", top_k=5)] == want
    # a different tokenizer cannot reuse the segments: it re-tokenizes from the database and stays correct
    stemmed = FaissDocumentStore.load(path, bm25_stemmer="english")
    assert store.bm25_retrieval("documents", top_k=30) == []  # unstemmed: "documents" != "document"
    assert len(stemmed.bm25_retrieval("documents", top_k=30)) == 20
    # a damaged segment file is not fatal either: the index is rebuilt
    checkpoint = _checkpoints(path)[0]
    next(checkpoint.glob("seg-*.post_tf.npy")).write_bytes(b"broken")
    assert [(d.id, d.score) for d in FaissDocumentStore.load(path).bm25_retrieval("topic2 number", 5)] == want


def test_bm25_spills_to_a_scratch_directory_and_maps_its_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(segments, "SPILL_BYTES", 0)  # spill every segment and every new vocabulary
    monkeypatch.setattr(segments, "SPILL_TERMS", 1)
    path = tmp_path / "store"
    store = FaissDocumentStore(path=str(path), embedding_dim=4)
    in_memory = FaissDocumentStore(embedding_dim=4)
    docs = _docs(40)
    for start in range(0, 40, 8):
        store.write_documents(docs[start : start + 8])
        in_memory.write_documents(docs[start : start + 8])
    store.delete_documents(["d3", "d17"])
    in_memory.delete_documents(["d3", "d17"])

    def hits(s):
        return [(d.id, d.score) for d in s.bm25_retrieval("topic1 number T12", top_k=40)]

    (scratch,) = [p for p in (path / "index").iterdir() if p.name.startswith(persistence.SCRATCH_PREFIX)]
    assert all(seg.file_prefix.parent == scratch for seg in store._bm25.segments)
    assert hits(store) == hits(in_memory)
    store.save()  # the checkpoint takes over the spilled files: the scratch directory empties
    assert [f.name for f in scratch.iterdir()] == [".lock"]
    assert all(isinstance(seg.post_docs, np.memmap) for seg in store._bm25.segments)
    assert isinstance(store._bm25.vocab._df_saved, np.memmap)
    assert hits(store) == hits(in_memory) == hits(FaissDocumentStore.load(path))
    store.close()
    assert not scratch.exists()


def test_abandoned_scratch_directories_are_removed_on_open(tmp_path):
    path = tmp_path / "store"
    FaissDocumentStore(path=str(path), embedding_dim=4).write_documents(_docs(3))
    held = persistence.ScratchDir(path)
    in_use = held.get()
    abandoned = path / "index" / f"{persistence.SCRATCH_PREFIX}dead"
    abandoned.mkdir()
    (abandoned / ".lock").touch()
    (abandoned / "seg-x.rowids.npy").write_bytes(b"x")
    FaissDocumentStore.load(path)
    assert not abandoned.exists() and in_use.is_dir()
    held.close()
    assert not in_use.exists()


class _QueryOnlyTokenizer:
    """Wraps a tokenizer and allows exactly one call per query (the query itself), not the corpus."""

    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def __call__(self, text):
        self.calls += 1
        if self.calls > 1:
            raise AssertionError("the corpus was re-tokenized although the token cache was loaded")
        return self.inner(text)


def test_update_by_filter_title_changes_bm25_and_clear_keeps_training():
    store = FaissDocumentStore(embedding_dim=4, factory="IVF4,Flat", nprobe=4)
    store.write_documents(_docs(200))
    assert store.bm25_retrieval("zeppelin", top_k=3) == []
    n = store.update_by_filter({"field": "meta.i", "operator": "<", "value": 2}, {"title": "Zeppelin"})
    assert n == 2
    assert {d.id for d in store.bm25_retrieval("zeppelin", top_k=3)} == {"d0", "d1"}
    store.delete_all_documents()
    assert store._dense.is_trained and store.count_documents() == 0
    store.write_documents(_docs(3))  # too few to train, but the index is still trained
    assert len(store.embedding_retrieval(np.ones(4), top_k=5)) == 3
    store.delete_all_documents(recreate_index=True)
    assert not store._dense.is_trained


def test_filters_on_content_and_meta_agree_with_haystack_matcher():
    from haystack.utils.filters import document_matches_filter

    docs = _docs(40)
    store = FaissDocumentStore(embedding_dim=4)
    store.write_documents(docs)
    cases = [
        {"field": "meta.i", "operator": "in", "value": [1, 5, 7]},
        {"field": "content", "operator": "==", "value": "document number 3 about topic0"},
        {
            "operator": "OR",
            "conditions": [
                {"field": "id", "operator": "==", "value": "d9"},
                {"field": "content", "operator": "==", "value": "document number 4 about topic1"},
            ],
        },
        {"operator": "NOT", "conditions": [{"field": "meta.title", "operator": "in", "value": ["T1", "T2"]}]},
    ]
    for flt in cases:
        want = [d.id for d in docs if document_matches_filter(flt, d)]
        assert [d.id for d in store.filter_documents(flt)] == want
        assert store.count_documents_by_filter(flt) == len(want)
    # the id/meta view cache follows writes, updates and deletes
    flt = {"field": "meta.i", "operator": ">=", "value": 38}
    assert store.count_documents_by_filter(flt) == 2
    store.write_documents([Document(id="new", content="x", meta={"i": 99})])
    assert store.count_documents_by_filter(flt) == 3
    store.update_by_filter({"field": "id", "operator": "==", "value": "new"}, {"i": 0})
    assert store.count_documents_by_filter(flt) == 2
    assert store.delete_by_filter(flt) == 2
    assert store.count_documents_by_filter(flt) == 0


def test_huge_top_k_returns_everything_without_allocating_k_slots():
    store = FaissDocumentStore(embedding_dim=4)
    store.write_documents(_docs(5))
    assert len(store.embedding_retrieval(np.ones(4), top_k=10**12)) == 5
    assert len(store.bm25_retrieval("document", top_k=10**12)) == 5
