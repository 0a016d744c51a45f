"""create_app: spart's pipelines deployed on hayhooks, in process (FastAPI's test client)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from spart.serving import create_app, default_pipelines


@pytest.fixture(scope="module")
def client(serve_store):
    app = create_app({name: {"store": str(serve_store), "device": "cpu"} for name in default_pipelines(serve_store)})
    with TestClient(app) as test_client:
        yield test_client


def test_health_lists_the_served_pipelines(client):
    status = client.get("/status").json()
    assert status["status"] == "Up!" and sorted(status["pipelines"]) == ["bm25_qa", "dense_qa", "hybrid_qa"]


def test_run_returns_the_fused_list_with_each_retrievers_rank(client):
    response = client.post("/hybrid_qa/run", json={"query": "who wrote hamlet?", "top_k": 3})
    assert response.status_code == 200
    result = response.json()["result"]
    assert result["final"] == "fuser" and len(result["results"]) == 3
    top = result["results"][0]
    assert top["title"] == "Hamlet" and top["bm25_retriever"]["rank"] == 1
    assert set(result["retrievers"]) == {"bm25_retriever", "dense_retriever"}
    assert top["dense_retriever"]["rank"] == next(
        e["rank"] for e in result["retrievers"]["dense_retriever"] if e["id"] == top["id"]
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"query": "   "}, 400, "the question must be a non-empty string"),
        ({"query": "hamlet", "top_k": 0}, 400, "top_k must be a positive integer, got 0"),
        ({"query": "hamlet", "top_k": -2}, 400, "top_k must be a positive integer, got -2"),
        ({"top_k": 3}, 422, "Field required"),
    ],
)
def test_bad_requests_get_4xx_with_the_components_message(client, body, status, message):
    response = client.post("/bm25_qa/run", json=body)
    assert response.status_code == status
    assert message in str(response.json()["detail"])


def test_unknown_pipeline_is_404_naming_the_served_ones(client):
    response = client.post("/nope/run", json={"query": "hamlet"})
    assert response.status_code == 404
    assert response.json()["detail"] == "unknown pipeline 'nope'; served: bm25_qa, dense_qa, hybrid_qa"


def test_openapi_schema_documents_run_and_status_and_no_deploy_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/hybrid_qa/run", "/dense_qa/run", "/bm25_qa/run", "/status", "/pipelines"} <= set(paths)
    assert not [p for p in paths if "deploy" in p or "draw" in p or p.startswith("/v1")]
    assert client.post("/deploy_files", json={}).status_code in (404, 405)
    app = client.app
    for url in (app.docs_url, app.redoc_url):  # the API documentation pages stay
        assert client.get(url).status_code == 200
    run = paths["/hybrid_qa/run"]["post"]
    assert "Retrieve the passages" in run["description"]


def test_search_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and '<form id="search">' in page.text and "spart search" in page.text
    assert [p["name"] for p in client.get("/pipelines").json()["pipelines"]] == ["bm25_qa", "dense_qa", "hybrid_qa"]


def test_bad_store_fails_at_start_naming_the_pipeline(tmp_path):
    with pytest.raises(FileNotFoundError, match="pipeline dense_qa: document store directory not found"):
        create_app({"dense_qa": {"store": str(tmp_path / "missing")}})
    with pytest.raises(ValueError, match="no pipeline to serve"):
        create_app({})


def test_pgvector_pipelines_are_served_from_the_database(pg_url, tiny_corpus, tiny_bert_dir):
    import uuid

    from spart.components.embedders import SpiderDocumentEmbedder
    from spart.pipelines import build_store

    url = f"{pg_url}#serve_{uuid.uuid4().hex[:8]}"
    embedder = SpiderDocumentEmbedder(model=str(tiny_bert_dir), device="cpu", precision="fp32", progress_bar=False)
    build_store(tiny_corpus, url, embedder, progress=False)
    app = create_app({name: {"store": url} for name in default_pipelines(url)})
    with TestClient(app) as pg_client:
        assert sorted(pg_client.get("/status").json()["pipelines"]) == ["dense_qa_pgvector", "hybrid_qa_pgvector"]
        result = pg_client.post("/hybrid_qa_pgvector/run", json={"query": "hamlet tragedy", "top_k": 2}).json()[
            "result"
        ]
        assert result["results"][0]["title"] == "Hamlet"
        assert result["results"][0]["keyword_retriever"]["rank"] == 1
        assert pg_client.post("/dense_qa_pgvector/run", json={"query": "x", "top_k": 0}).status_code == 400
