"""spart.data: the passage type and its adapter, and streaming readers for DPR and BEIR corpora, QA files,
queries, qrels and questions."""

from spart.data.passages import Passage, as_passage
from spart.data.readers import (
    QAPair,
    Query,
    passages_to_documents,
    read_beir_corpus,
    read_beir_qrels,
    read_beir_queries,
    read_dpr_passages,
    read_dpr_qa,
    read_passages,
    read_questions,
)

__all__ = [
    "Passage",
    "QAPair",
    "Query",
    "as_passage",
    "passages_to_documents",
    "read_beir_corpus",
    "read_beir_qrels",
    "read_beir_queries",
    "read_dpr_passages",
    "read_dpr_qa",
    "read_passages",
    "read_questions",
]
