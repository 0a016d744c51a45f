"""Running a Haystack pipeline over evaluation questions, and per-query run files (JSONL).

Each question is asked through the pipeline runner (:mod:`spart.pipelines.running`), which states the one
rule: the question goes to every open ``query``/``text``/``question`` input, ``top_k`` sets the length of the
final list (the output component) and ``depth`` the number of candidates of every earlier list (retrievers,
and a fuser feeding a ranker). ``spart eval --depth N`` passes ``top_k=depth=N``, so one pipeline file serves
any cut-off and a rerank pipeline scores ``N`` candidates.

Haystack 3.4 has no batch ``Pipeline.run``; spart's components take one query per call, so questions run one
at a time with a progress bar. (Query encoding is a small share of the cost; the corpus side, which is
batched, is done once when the store is built.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spart.atomic import atomic_write
from spart.pipelines.running import output_component, run_question
from spart.validation import check_top_k


@dataclass
class Retrieved:
    """One question's ranking: ids and scores best first, plus any extra component outputs requested."""

    doc_ids: list[str]
    scores: list[float | None]
    contents: list[str | None]
    extra: dict[str, list[tuple[str, float | None]]] = field(default_factory=dict)


def _ranked(documents: Iterable[Any]) -> list[tuple[str, float | None]]:
    return [(str(doc.id), None if doc.score is None else float(doc.score)) for doc in documents]


def run_pipeline(
    pipeline: Any,
    questions: Sequence[str],
    *,
    top_k: int | None = None,
    depth: int | None = None,
    output: str | None = None,
    include_outputs_from: Iterable[str] = (),
    show_progress: bool = True,
    desc: str = "queries",
) -> list[Retrieved]:
    """Run ``pipeline`` once per question and collect the final ranking (and, optionally, intermediate ones).

    :param pipeline: a Haystack ``Pipeline`` (warmed up here if needed).
    :param questions: the query strings.
    :param top_k: length of the final list, set on the output component (``None``: the pipeline's setting).
    :param depth: candidates of every earlier list: retrievers, and a fuser feeding a ranker (``None``: the
        pipeline's settings). See :mod:`spart.pipelines.running`.
    :param output: the component whose ``documents`` are the answer (default: the pipeline's output component).
    :param include_outputs_from: other components whose ``documents`` are kept in ``Retrieved.extra``
        (fusion tuning reads the retrievers' lists this way).
    :param show_progress: tqdm progress bar.
    :returns: one :class:`Retrieved` per question, in order.
    """
    from tqdm.auto import tqdm

    check_top_k(top_k, "top_k", allow_none=True)
    check_top_k(depth, "depth", allow_none=True)
    final = output_component(pipeline, output)
    extra_names = [n for n in dict.fromkeys(include_outputs_from) if n != final]
    if hasattr(pipeline, "warm_up"):
        pipeline.warm_up()
    results: list[Retrieved] = []
    for question in tqdm(questions, desc=desc, disable=not show_progress, unit="q"):
        lists = run_question(pipeline, question, top_k=top_k, depth=depth, output=final, keep=extra_names)
        docs = lists[final]
        ranked = _ranked(docs)
        extra = {name: _ranked(lists.get(name, [])) for name in extra_names}
        results.append(
            Retrieved(
                [d for d, _ in ranked], [s for _, s in ranked], [getattr(doc, "content", None) for doc in docs], extra
            )
        )
    return results


def write_jsonl(path: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Write records as JSON lines atomically (temp file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a per-query run file written by :func:`write_jsonl`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such run file")
    records = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{line_no}: invalid JSON: {error.msg}") from None
    return records


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write one JSON document atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    return path
