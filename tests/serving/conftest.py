"""A tiny store, and `spart serve` started on it as a real server on 127.0.0.1 (a free port)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def tiny_documents():
    """The six documents of tests/pipelines/conftest.py (loaded from there: one corpus for both folders)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pipelines_conftest", TESTS / "pipelines" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_documents()


@pytest.fixture
def tiny_corpus():
    return tiny_documents()


@pytest.fixture(scope="session")
def serve_store(tmp_path_factory, minilm_dir) -> Path:
    """The six test documents embedded with the packaged MiniLM (a real model: the dense list makes sense)."""
    from spart.components.embedders import SpiderDocumentEmbedder
    from spart.pipelines import build_store

    store = tmp_path_factory.mktemp("serve") / "tiny"
    embedder = SpiderDocumentEmbedder(model=str(minilm_dir), device="cpu", precision="fp32", progress_bar=False)
    build_store(tiny_documents(), store, embedder, progress=False)
    return store


@pytest.fixture(scope="session")
def server(serve_store, tmp_path_factory):
    """`spart serve --store <tiny store>` (bm25_qa, dense_qa, hybrid_qa): its base URL and start-up seconds."""
    from spart.serving.process import start_server, stop_server

    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    started = time.monotonic()
    with log.open("wb") as output:
        try:
            process, base = start_server(["--store", str(serve_store), "--device", "cpu"], output, timeout=120)
        except RuntimeError as error:
            raise RuntimeError(f"{error}:\n{log.read_text()}") from None
    seconds = time.monotonic() - started
    yield {"url": base, "seconds": seconds, "log": log}
    stop_server(process)
