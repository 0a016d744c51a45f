"""Streaming readers for the corpus and query formats spart uses.

Formats:

- DPR evidence TSV (``psgs_w100.tsv`` style): header ``id<TAB>text<TAB>title``, fields quoted the way
  Python's ``csv`` module writes them (a field containing ``"`` is wrapped in quotes, inner quotes doubled).
- DPR QA CSV: no header, ``question<TAB>["answer", ...]`` with a JSON answer list.
- BEIR: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
  ``qrels/<split>.tsv`` (header ``query-id<TAB>corpus-id<TAB>score``).
- Questions only (for ART training): a plain text file with one question per line, the question column of
  a DPR QA file, or a BEIR ``queries.jsonl``.

Every reader streams (memory bounded by one record, except qrels which are returned as a dict) and reports
malformed input as ``ValueError("<file>:<line>: <problem>")``.
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spart.data.passages import Passage

if TYPE_CHECKING:  # haystack is only imported when documents are actually built
    from haystack import Document

PathLike = str | Path

# DPR passages are short, but a corpus with long fields must not trip csv's 128 KiB default limit.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

DPR_PASSAGE_HEADER = ["id", "text", "title"]
BEIR_QRELS_HEADER = ["query-id", "corpus-id", "score"]


@dataclass(frozen=True, slots=True)
class QAPair:
    """An open-domain QA example: a question and the answer strings that count as correct."""

    question: str
    answers: list[str]


@dataclass(frozen=True, slots=True)
class Query:
    """A BEIR query: an id (used by qrels) and its text."""

    id: str
    text: str


def _existing_file(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path}: expected a file, found a directory")
    return path


def _open_text(path: Path):
    # utf-8-sig drops a byte-order mark some editors prepend, which would otherwise corrupt the first id.
    return path.open("r", encoding="utf-8-sig", newline="")


def read_dpr_passages(path: PathLike) -> Iterator[Passage]:
    """Stream passages from a DPR evidence TSV (header ``id<TAB>text<TAB>title``).

    :param path: the ``.tsv`` file.
    :returns: an iterator of :class:`Passage`, in file order.
    :raises FileNotFoundError: if the file is missing.
    :raises ValueError: on a wrong header, a row without 3 fields, or an empty id (message names file:line).
    """
    path = _existing_file(path)
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter="\t")
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty file, expected header 'id\\ttext\\ttitle'") from None
        except csv.Error as error:
            raise ValueError(f"{path}:1: malformed TSV: {error}") from None
        if [h.strip().lower() for h in header] != DPR_PASSAGE_HEADER:
            raise ValueError(f"{path}:1: expected header 'id\\ttext\\ttitle', found {header!r}")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise ValueError(f"{path}:{reader.line_num}: malformed TSV: {error}") from None
            if not row:  # a blank line (e.g. a trailing newline pair) carries no passage
                continue
            if len(row) != 3:
                raise ValueError(
                    f"{path}:{reader.line_num}: expected 3 tab-separated fields (id, text, title), found {len(row)}"
                )
            pid, text, title = row
            if not pid.strip():
                raise ValueError(f"{path}:{reader.line_num}: empty passage id")
            yield Passage(id=pid, text=text, title=title)


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with _open_text(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{line_no}: invalid JSON: {error.msg}") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object, found {type(record).__name__}")
            yield line_no, record


def _required_str(record: dict, key: str, path: Path, line_no: int, *, allow_empty: bool = False) -> str:
    if key not in record:
        raise ValueError(f"{path}:{line_no}: missing field {key!r}")
    value = record[key]
    if value is None:
        value = ""
    if not isinstance(value, (str, int)):
        raise ValueError(f"{path}:{line_no}: field {key!r} must be a string, found {type(value).__name__}")
    value = str(value)
    if not allow_empty and not value.strip():
        raise ValueError(f"{path}:{line_no}: field {key!r} is empty")
    return value


def read_beir_corpus(path: PathLike) -> Iterator[Passage]:
    """Stream passages from a BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``).

    :param path: the ``.jsonl`` file, or a BEIR data set directory (then ``<dir>/corpus.jsonl``).
    :returns: an iterator of :class:`Passage`; a missing title reads as ``""``.
    :raises ValueError: on invalid JSON or a missing ``_id``/``text`` (message names file:line).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    path = _existing_file(path)
    for line_no, record in _iter_jsonl(path):
        pid = _required_str(record, "_id", path, line_no)
        text = _required_str(record, "text", path, line_no, allow_empty=True)
        title = record.get("title") or ""
        if not isinstance(title, str):
            raise ValueError(f"{path}:{line_no}: field 'title' must be a string")
        yield Passage(id=pid, text=text, title=title)


def read_passages(path: PathLike) -> Iterator[Passage]:
    """Stream passages from any supported corpus: ``.tsv`` → DPR, ``.jsonl`` or a directory → BEIR.

    :param path: a DPR TSV, a BEIR ``corpus.jsonl`` or a BEIR directory.
    :returns: an iterator of :class:`Passage`.
    :raises ValueError: for an unknown suffix.
    """
    path = Path(path)
    if path.is_dir():
        return read_beir_corpus(path)
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return read_dpr_passages(path)
    if suffix == ".jsonl":
        return read_beir_corpus(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    raise ValueError(f"{path}: unknown corpus format (expected a DPR .tsv, a BEIR corpus .jsonl or a BEIR directory)")


def _parse_answers(raw: str, path: Path, line_no: int) -> list[str]:
    try:
        answers = json.loads(raw)
    except json.JSONDecodeError:
        # Some DPR QA files were written with Python's repr (single quotes); literal_eval is safe for that.
        try:
            answers = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise ValueError(f"{path}:{line_no}: answer column is not a JSON list: {raw[:80]!r}") from None
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise ValueError(f"{path}:{line_no}: answer column must be a list of strings, found {raw[:80]!r}")
    return answers


def read_dpr_qa(path: PathLike) -> Iterator[QAPair]:
    """Stream question/answers pairs from a DPR QA file (``question<TAB>["a", ...]``, no header).

    :param path: the ``.csv``/``.tsv`` QA file.
    :returns: an iterator of :class:`QAPair`.
    :raises ValueError: on a row without 2 fields, an empty question or an unparsable answer list.
    """
    path = _existing_file(path)
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter="\t")
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise ValueError(f"{path}:{reader.line_num}: malformed QA line: {error}") from None
            if not row:
                continue
            if len(row) != 2:
                raise ValueError(
                    f"{path}:{reader.line_num}: expected 'question<TAB>[answers]', found {len(row)} fields"
                )
            question = row[0].strip()
            if not question:
                raise ValueError(f"{path}:{reader.line_num}: empty question")
            yield QAPair(question=question, answers=_parse_answers(row[1], path, reader.line_num))


def read_beir_queries(path: PathLike) -> Iterator[Query]:
    """Stream queries from a BEIR ``queries.jsonl`` (``_id``, ``text``).

    :param path: the ``.jsonl`` file, or a BEIR directory (then ``<dir>/queries.jsonl``).
    :returns: an iterator of :class:`Query`.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "queries.jsonl"
    path = _existing_file(path)
    for line_no, record in _iter_jsonl(path):
        yield Query(id=_required_str(record, "_id", path, line_no), text=_required_str(record, "text", path, line_no))


def read_beir_qrels(path: PathLike) -> dict[str, dict[str, int]]:
    """Read BEIR relevance judgements (header ``query-id<TAB>corpus-id<TAB>score``).

    :param path: the ``qrels/<split>.tsv`` file.
    :returns: ``{query_id: {corpus_id: score}}``, the shape ranx's ``Qrels`` takes.
    :raises ValueError: on a wrong header, a row without 3 fields or a non-integer score.
    """
    path = _existing_file(path)
    qrels: dict[str, dict[str, int]] = {}
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected header 'query-id\\tcorpus-id\\tscore'")
        if [h.strip().lower() for h in header] != BEIR_QRELS_HEADER:
            raise ValueError(f"{path}:1: expected header 'query-id\\tcorpus-id\\tscore', found {header!r}")
        for row in reader:
            if not row:
                continue
            if len(row) != 3:
                raise ValueError(f"{path}:{reader.line_num}: expected 3 tab-separated fields, found {len(row)}")
            qid, cid, score = (field.strip() for field in row)
            if not qid or not cid:
                raise ValueError(f"{path}:{reader.line_num}: empty query-id or corpus-id")
            try:
                qrels.setdefault(qid, {})[cid] = int(score)
            except ValueError:
                raise ValueError(f"{path}:{reader.line_num}: score must be an integer, found {score!r}") from None
    return qrels


def read_questions(path: PathLike) -> Iterator[str]:
    """Stream questions alone, from whichever file holds them (ART trains on questions without answers).

    - ``.jsonl`` or a BEIR directory: the ``text`` of each BEIR query;
    - ``.csv``/``.tsv``: the question column of a DPR QA file (answers, if present, are ignored);
    - anything else (e.g. ``.txt``): one question per non-blank line.

    :param path: the questions file or BEIR directory.
    :returns: an iterator of question strings (stripped, never empty).
    """
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".jsonl":
        for query in read_beir_queries(path):
            yield query.text
        return
    path = _existing_file(path)
    if path.suffix.lower() in {".csv", ".tsv"}:
        with _open_text(path) as handle:
            reader = csv.reader(handle, delimiter="\t")
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    raise ValueError(f"{path}:{reader.line_num}: malformed line: {error}") from None
                if row and row[0].strip():
                    yield row[0].strip()
        return
    with _open_text(path) as handle:
        for line in handle:
            if line.strip():
                yield line.strip()


def passages_to_documents(passages: Iterable[Passage]) -> Iterator[Document]:
    """Turn passages into Haystack documents (``id`` kept, ``content=text``, ``meta={"title": title}``).

    :param passages: any iterable of :class:`Passage` (e.g. from :func:`read_passages`).
    :returns: an iterator of :class:`haystack.Document`.
    """
    from haystack import Document

    for passage in passages:
        yield Document(id=passage.id, content=passage.text, meta={"title": passage.title})
