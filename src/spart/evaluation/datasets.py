"""Evaluation data sets: a corpus plus questions judged either by answer strings (DPR) or by qrels (BEIR).

Resolution of ``load_dataset(path, split)``:

- a directory with ``corpus.jsonl`` is BEIR: ``queries.jsonl`` and ``qrels/<split>.tsv`` (only the queries
  judged in that split are evaluated);
- a directory with ``passages.tsv`` (or exactly one other DPR ``.tsv``) is DPR: the QA file is the one
  ``.csv`` whose name ends in ``-<split>.csv`` or ``_<split>.csv`` (``trivia-test.csv`` for ``test``);
- explicit files (``corpus=``, ``qa=`` or ``queries=`` + ``qrels=``) override what a directory gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from spart.data.readers import Passage, read_beir_qrels, read_beir_queries, read_dpr_qa, read_passages

DPR = "dpr"
BEIR = "beir"


@dataclass(frozen=True)
class EvalQuery:
    """One evaluation question: its id, text and (DPR) acceptable answers."""

    id: str
    text: str
    answers: tuple[str, ...] = ()


@dataclass
class EvalDataset:
    """A corpus and its evaluation questions.

    :param name: a short label (directory name + split), used in tables and file names.
    :param kind: ``"dpr"`` (answer strings, top-k accuracy) or ``"beir"`` (qrels, nDCG/Recall/MRR/MAP).
    :param corpus_path: the passages file or BEIR directory, read again (streamed) when texts are needed.
    :param queries: questions in file order.
    :param qrels: BEIR judgements ``{query_id: {doc_id: relevance}}`` (``None`` for DPR).
    :param match_type: DPR answer matching, ``"string"`` or ``"regex"``.
    """

    name: str
    kind: str
    corpus_path: Path
    queries: list[EvalQuery]
    qrels: dict[str, dict[str, int]] | None = None
    match_type: str = "string"
    split: str = "test"
    files: dict[str, str] = field(default_factory=dict)

    def passages(self) -> Iterator[Passage]:
        """Stream the corpus."""
        return read_passages(self.corpus_path)


def _find_dpr_corpus(directory: Path) -> Path:
    default = directory / "passages.tsv"
    if default.is_file():
        return default
    candidates = sorted(directory.glob("*.tsv"))
    if len(candidates) == 1:
        return candidates[0]
    raise FileNotFoundError(
        f"{directory}: no passages.tsv (and not exactly one .tsv to use instead: {[c.name for c in candidates]})"
    )


def _find_dpr_qa(directory: Path, split: str) -> Path:
    candidates = sorted(
        p
        for p in directory.glob("*.csv")
        if p.stem.endswith(f"-{split}") or p.stem.endswith(f"_{split}") or p.stem == split
    )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise FileNotFoundError(f"{directory}: no QA file for split {split!r} (expected e.g. '<name>-{split}.csv')")
    raise ValueError(f"{directory}: several QA files for split {split!r}: {[c.name for c in candidates]}; pass --qa")


def load_dataset(
    path: str | Path | None = None,
    split: str = "test",
    *,
    corpus: str | Path | None = None,
    qa: str | Path | None = None,
    queries: str | Path | None = None,
    qrels: str | Path | None = None,
    match_type: str = "string",
) -> EvalDataset:
    """Resolve and read an evaluation data set (see the module docstring for the rules).

    :param path: a DPR or BEIR data set directory (optional when explicit files are given).
    :param split: which questions: ``test``, ``train``, ``dev``...
    :param corpus: passages file or BEIR directory.
    :param qa: DPR QA file (question + answers).
    :param queries: BEIR ``queries.jsonl``.
    :param qrels: BEIR ``qrels/<split>.tsv``.
    :param match_type: DPR answer matching (``"string"`` or ``"regex"``).
    :returns: the :class:`EvalDataset`.
    :raises FileNotFoundError: when a needed file cannot be found.
    :raises ValueError: when the combination is ambiguous or a judged query is unknown.
    """
    directory = Path(path) if path is not None else None
    if directory is not None and not directory.exists():
        raise FileNotFoundError(f"{directory}: no such data set directory or file")
    if directory is not None and directory.is_file():
        # A single file: a QA csv (DPR) with the corpus next to it unless given.
        if directory.suffix.lower() == ".csv":
            qa = qa or directory
            directory = directory.parent
        else:
            raise ValueError(f"{directory}: give a data set directory, or a DPR QA .csv file")

    beir = (
        qrels is not None or queries is not None or (directory is not None and (directory / "corpus.jsonl").is_file())
    )
    if beir and qa is None:
        corpus_path = Path(corpus) if corpus else (directory / "corpus.jsonl" if directory else None)
        queries_path = Path(queries) if queries else (directory / "queries.jsonl" if directory else None)
        qrels_path = Path(qrels) if qrels else (directory / "qrels" / f"{split}.tsv" if directory else None)
        if corpus_path is None or queries_path is None or qrels_path is None:
            raise ValueError("a BEIR data set needs a directory, or corpus, queries and qrels files")
        judged = read_beir_qrels(qrels_path)
        text_by_id = {q.id: q.text for q in read_beir_queries(queries_path)}
        unknown = [qid for qid in judged if qid not in text_by_id]
        if unknown:
            raise ValueError(
                f"{qrels_path}: {len(unknown)} judged queries are not in {queries_path} (e.g. {unknown[:3]})"
            )
        if not corpus_path.exists():
            raise FileNotFoundError(f"{corpus_path}: no such corpus")
        eval_queries = [EvalQuery(qid, text_by_id[qid]) for qid in judged]
        name = f"{(directory or corpus_path.parent).name}/{split}"
        files = {"corpus": str(corpus_path), "queries": str(queries_path), "qrels": str(qrels_path)}
        return EvalDataset(name, BEIR, corpus_path, eval_queries, judged, split=split, files=files)

    if qa is None and directory is None:
        raise ValueError("a DPR data set needs a directory or a QA file (--qa)")
    qa_path = Path(qa) if qa else _find_dpr_qa(directory, split)
    corpus_path = Path(corpus) if corpus else _find_dpr_corpus(directory or qa_path.parent)
    if not corpus_path.exists():
        raise FileNotFoundError(f"{corpus_path}: no such corpus")
    eval_queries = [
        EvalQuery(str(i), pair.question, tuple(pair.answers)) for i, pair in enumerate(read_dpr_qa(qa_path))
    ]
    if not eval_queries:
        raise ValueError(f"{qa_path}: no questions")
    files = {"corpus": str(corpus_path), "qa": str(qa_path)}
    name = f"{corpus_path.parent.name}/{qa_path.stem}"
    return EvalDataset(name, DPR, corpus_path, eval_queries, None, match_type=match_type, split=split, files=files)
