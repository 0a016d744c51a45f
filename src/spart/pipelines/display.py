"""Ask a retrieval pipeline one question and show every retriever's list next to the final one.

Used by ``spart query`` and ``spart demo``: the final ranking (e.g. the fused list of ``hybrid_qa``) is shown
with, for each document, its rank and raw score in each retriever's list.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spart.pipelines.running import document_components, output_component, run_question

if TYPE_CHECKING:
    from haystack import Document, Pipeline


@dataclass
class Answer:
    """The documents each component returned for one question.

    :param question: the question asked.
    :param final: name of the pipeline's output component.
    :param lists: component name -> its ranked documents (the output component and every retriever).
    """

    question: str
    final: str
    lists: dict[str, list[Document]] = field(default_factory=dict)

    @property
    def documents(self) -> list[Document]:
        """The pipeline's final ranking."""
        return self.lists[self.final]

    @property
    def retrievers(self) -> list[str]:
        """Names of the components feeding the final list (empty when the final list is a retriever's)."""
        return [name for name in self.lists if name != self.final]

    def rank_in(self, name: str, doc_id: str) -> tuple[int, float] | None:
        """1-based rank and score of ``doc_id`` in component ``name``'s list, or ``None``."""
        for rank, doc in enumerate(self.lists[name], start=1):
            if doc.id == doc_id:
                return rank, doc.score
        return None

    def to_dict(self, show: int | None = None) -> dict[str, Any]:
        """A JSON-ready form: the final list with per-retriever ranks/scores, and each retriever's list."""

        def entry(rank: int, doc: Document) -> dict[str, Any]:
            return {"rank": rank, "id": doc.id, "score": doc.score, "title": doc.meta.get("title"), "text": doc.content}

        results = []
        for rank, doc in enumerate(self.documents[:show], start=1):
            item = entry(rank, doc)
            for name in self.retrievers:
                found = self.rank_in(name, doc.id)
                item[name] = None if found is None else {"rank": found[0], "score": found[1]}
            results.append(item)
        return {
            "question": self.question,
            "final": self.final,
            "results": results,
            "retrievers": {
                name: [entry(r, d) for r, d in enumerate(self.lists[name][:show], start=1)] for name in self.retrievers
            },
        }


def ask(pipeline: Pipeline, question: str, top_k: int | None = None, *, depth: int | None = None) -> Answer:
    """Run ``pipeline`` on ``question``, keeping the lists of every component that outputs documents.

    :param top_k: documents in the final list (``None``: the pipeline's setting).
    :param depth: candidates in each earlier list (``None``: the pipeline's settings); see
        :mod:`spart.pipelines.running`.
    """
    final = output_component(pipeline)
    lists = run_question(pipeline, question, top_k=top_k, depth=depth, keep=document_components(pipeline))
    answer = Answer(question=question, final=final)
    for name in sorted(lists, key=lambda n: (n == final, n)):
        answer.lists[name] = lists[name]
    return answer


def _short_name(name: str) -> str:
    return name.removesuffix("_retriever")


def _snippet(doc: Document, width: int) -> str:
    title = doc.meta.get("title")
    text = " ".join((doc.content or "").split())
    return textwrap.shorten(f"{title} — {text}" if title else text, width=max(width, 20), placeholder=" …")


def format_answer(
    answer: Answer,
    show: int = 5,
    width: int = 100,
    retriever_lists: int = 0,
    is_hit: Callable[[Document], bool] | None = None,
) -> str:
    """Human-readable ranking: one line per document with the final score and each retriever's rank/score.

    :param show: documents of the final list to print.
    :param width: characters of passage text per line.
    :param retriever_lists: also print the first N documents of each retriever's own list (0: no).
    :param is_hit: marks documents for which it returns True with ``*`` (e.g. "contains the answer").
    """

    def mark(doc: Document) -> str:
        return "*" if is_hit is not None and is_hit(doc) else " "

    lines = []
    for name in answer.retrievers if retriever_lists else []:
        lines.append(f"  {_short_name(name)} (top {retriever_lists} of {len(answer.lists[name])}):")
        for rank, doc in enumerate(answer.lists[name][:retriever_lists], start=1):
            lines.append(f"   {mark(doc)}{rank:>2}. {doc.score:>8.4f}  [{doc.id}] {_snippet(doc, width)}")
    label = _short_name(answer.final)
    lines.append(f"  {label}:" if not answer.retrievers else f"  {label} (fused):")
    if not answer.documents:
        lines.append("    (no documents)")
    for rank, doc in enumerate(answer.documents[:show], start=1):
        parts = []
        for name in answer.retrievers:
            found = answer.rank_in(name, doc.id)
            parts.append(f"{_short_name(name)} " + ("—" if found is None else f"#{found[0]} {found[1]:.4f}"))
        sources = f"  ({', '.join(parts)})" if parts else ""
        lines.append(f"   {mark(doc)}{rank:>2}. {doc.score:>8.4f}{sources}  [{doc.id}]")
        lines.append(f"        {_snippet(doc, width)}")
    return "\n".join(lines)
