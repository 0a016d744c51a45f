"""Tiny stand-in Haystack components with exact, known outputs, for runner and evaluator tests."""

from __future__ import annotations

from haystack import Document, Pipeline, component


@component
class FixedRetriever:
    """Returns the same ranked ids for every query (the order given), to make expected values exact."""

    def __init__(self, ids: list[str]):
        self.ids = ids

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int = 10):
        ranked = enumerate(self.ids[:top_k])
        return {"documents": [Document(id=i, content=f"content of {i}", score=1.0 / (r + 1)) for r, i in ranked]}


@component
class CountingRanker:
    """A stand-in ranker: keeps the first top_k documents and records how many candidates it was given."""

    def __init__(self):
        self.seen: list[int] = []

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int = 10):
        self.seen.append(len(documents))
        return {"documents": documents[:top_k]}


def fixed_pipeline(ids: list[str]) -> Pipeline:
    """One `FixedRetriever` named ``retriever``."""
    pipeline = Pipeline()
    pipeline.add_component("retriever", FixedRetriever(ids))
    return pipeline


def rerank_pipeline(ids: list[str]) -> Pipeline:
    """``retriever`` (a `FixedRetriever`) feeding ``ranker`` (a `CountingRanker`)."""
    pipeline = fixed_pipeline(ids)
    pipeline.add_component("ranker", CountingRanker())
    pipeline.connect("retriever.documents", "ranker.documents")
    return pipeline
