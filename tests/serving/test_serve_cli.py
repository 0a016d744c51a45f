"""`spart serve` as a real server on 127.0.0.1: starts in seconds, answers over HTTP, stops cleanly."""

from __future__ import annotations

import httpx


def test_server_starts_in_seconds_and_answers(server):
    assert server["seconds"] < 60, server["log"].read_text()
    status = httpx.get(f"{server['url']}/status").json()
    assert sorted(status["pipelines"]) == ["bm25_qa", "dense_qa", "hybrid_qa"]
    response = httpx.post(f"{server['url']}/dense_qa/run", json={"query": "who wrote hamlet?", "top_k": 2}, timeout=30)
    assert response.status_code == 200 and len(response.json()["result"]["results"]) == 2
    bad = httpx.post(f"{server['url']}/dense_qa/run", json={"query": "", "top_k": 2}, timeout=30)
    assert bad.status_code == 400 and "non-empty" in bad.json()["detail"]
    assert httpx.get(f"{server['url']}/").status_code == 200


def test_bad_store_exits_with_a_clear_error(tmp_path, capsys):
    from spart.cli import main

    assert main(["serve", "--store", str(tmp_path / "missing")]) == 2
    assert "document store directory not found" in capsys.readouterr().err
