"""A tiny store, and `spart serve` started on it as a real server on 127.0.0.1 (a free port)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

TESTS = Path(__file__).resolve().parents[1]
SRC = TESTS.parent / "src"


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(args: list[str], log: Path, timeout: float = 120.0) -> tuple[subprocess.Popen, str]:
    """Start ``spart serve ARGS`` on a free port; return the process and its base URL once /status answers."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "spart", "serve", *args, "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"spart serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/status", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"spart serve did not answer within {timeout} s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server(serve_store, tmp_path_factory):
    """`spart serve --store <tiny store>` (bm25_qa, dense_qa, hybrid_qa): its base URL and start-up seconds."""
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    started = time.monotonic()
    process, base = start_server(["--store", str(serve_store), "--device", "cpu"], log)
    seconds = time.monotonic() - started
    yield {"url": base, "seconds": seconds, "log": log}
    stop_server(process)
