"""Running a Haystack pipeline over evaluation questions, and per-query run files (JSONL).

spart pipelines take the query string at their open inputs (``text`` of a text embedder, ``query`` of a BM25
retriever or a ranker) and return ``documents`` from their last component. :func:`run_pipeline` feeds each
question to every open input socket named ``query``/``text``/``question`` and, when ``top_k`` is given, to
every open ``top_k`` socket (retrievers, fusers, rankers), so one pipeline file serves any cut-off.

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

QUERY_SOCKETS = ("query", "text", "question")


@dataclass
class Retrieved:
    """One question's ranking: ids and scores best first, plus any extra component outputs requested."""

    doc_ids: list[str]
    scores: list[float | None]
    contents: list[str | None]
    extra: dict[str, list[tuple[str, float | None]]] = field(default_factory=dict)


def output_component(pipeline: Any, name: str | None = None) -> str:
    """The component whose ``documents`` output is the pipeline's answer.

    :param pipeline: a Haystack ``Pipeline``.
    :param name: an explicit component name (checked).
    :returns: the name of the single component with a ``documents`` output and no outgoing connection.
    :raises ValueError: if there is none, or several and ``name`` was not given.
    """
    graph = pipeline.graph
    if name is not None:
        if name not in graph.nodes:
            raise ValueError(f"pipeline has no component {name!r}; components: {sorted(graph.nodes)}")
        return name
    leaves = []
    for node in graph.nodes:
        sockets = graph.nodes[node].get("output_sockets", {})
        if "documents" in sockets and graph.out_degree(node) == 0:
            leaves.append(node)
    if len(leaves) != 1:
        raise ValueError(f"cannot tell which component gives the pipeline's documents (candidates: {sorted(leaves)}); name it")
    return leaves[0]


def query_inputs(pipeline: Any, query: str, top_k: int | None = None) -> dict[str, dict[str, Any]]:
    """The ``Pipeline.run`` data that asks ``query`` (and ``top_k``) of every open input that takes one.

    :raises ValueError: if no input takes a query, or a mandatory input would stay unfed.
    """
    data: dict[str, dict[str, Any]] = {}
    for component, sockets in pipeline.inputs().items():
        for socket, info in sockets.items():
            if socket in QUERY_SOCKETS:
                data.setdefault(component, {})[socket] = query
            elif socket == "top_k" and top_k is not None:
                data.setdefault(component, {})[socket] = top_k
            elif info.get("is_mandatory"):
                raise ValueError(f"pipeline input {component}.{socket} is mandatory but is not a query input")
    if not any(socket in QUERY_SOCKETS for sockets in data.values() for socket in sockets):
        raise ValueError(f"the pipeline has no open input named one of {QUERY_SOCKETS}")
    return data


def _ranked(documents: Iterable[Any]) -> list[tuple[str, float | None]]:
    return [(str(doc.id), None if doc.score is None else float(doc.score)) for doc in documents]


def run_pipeline(
    pipeline: Any,
    questions: Sequence[str],
    *,
    top_k: int | None = None,
    output: str | None = None,
    include_outputs_from: Iterable[str] = (),
    show_progress: bool = True,
    desc: str = "queries",
) -> list[Retrieved]:
    """Run ``pipeline`` once per question and collect the final ranking (and, optionally, intermediate ones).

    :param pipeline: a Haystack ``Pipeline`` (warmed up here if needed).
    :param questions: the query strings.
    :param top_k: cut-off passed to every open ``top_k`` input (``None``: the pipeline's own settings).
    :param output: the component whose ``documents`` are the answer (default: the single leaf).
    :param include_outputs_from: other components whose ``documents`` are kept in ``Retrieved.extra``
        (fusion tuning reads the retrievers' lists this way).
    :param show_progress: tqdm progress bar.
    :returns: one :class:`Retrieved` per question, in order.
    """
    from tqdm.auto import tqdm

    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    final = output_component(pipeline, output)
    extra_names = [n for n in include_outputs_from if n != final]
    for name in extra_names:
        output_component(pipeline, name)  # validates the name
    if hasattr(pipeline, "warm_up"):
        pipeline.warm_up()
    results: list[Retrieved] = []
    for question in tqdm(questions, desc=desc, disable=not show_progress, unit="q"):
        data = query_inputs(pipeline, question, top_k)
        outputs = pipeline.run(data, include_outputs_from=set(extra_names) | {final})
        if final not in outputs or "documents" not in outputs[final]:
            raise ValueError(f"component {final!r} returned no 'documents' (got {sorted(outputs.get(final, {}))})")
        docs = outputs[final]["documents"]
        ranked = _ranked(docs)
        extra = {name: _ranked(outputs.get(name, {}).get("documents", [])) for name in extra_names}
        results.append(
            Retrieved([d for d, _ in ranked], [s for _, s in ranked], [getattr(doc, "content", None) for doc in docs], extra)
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
