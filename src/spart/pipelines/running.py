"""Ask a retrieval pipeline one question: which inputs get the question, and how long each ranked list is.

One rule for every pipeline, packaged or your own (``spart query``, ``spart demo``, ``spart eval``,
``spart tune-fusion`` and :func:`retrieve` all run pipelines through this module):

- the **question** goes to every open input named ``query``, ``text`` or ``question`` (text embedders take
  ``text``; BM25 retrievers and rankers take ``query``);
- the **output component** is the one component whose ``documents`` output is not connected (the fuser of
  ``hybrid_qa``, the ranker of a rerank pipeline, the retriever otherwise);
- ``top_k`` is the length of the **final list**: it is given to the output component's ``top_k`` input;
- ``depth`` is the number of **candidates** each earlier list holds: it is given to the ``top_k`` input of every
  other component that outputs ``documents`` (the retrievers, and a fuser that feeds a ranker). In a rerank
  pipeline ``depth`` is therefore the number of candidates the ranker scores (one LM pass each); in
  ``bm25_qa``/``dense_qa`` the retriever is the output, so only ``top_k`` applies;
- ``None`` keeps the pipeline's own settings (the YAML's ``top_k`` values).

Components are found with Haystack's public ``Pipeline.inputs()`` / ``Pipeline.outputs()`` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from spart.validation import check_top_k

if TYPE_CHECKING:
    from haystack import Document, Pipeline

QUESTION_SOCKETS = ("query", "text", "question")
DOCUMENTS = "documents"


def document_components(pipeline: Pipeline) -> list[str]:
    """Every component with a ``documents`` output (retrievers, fusers, rankers), in the pipeline's order."""
    outputs = pipeline.outputs(include_components_with_connected_outputs=True)
    return [name for name, sockets in outputs.items() if DOCUMENTS in sockets]


def output_component(pipeline: Pipeline, name: str | None = None) -> str:
    """The component whose ``documents`` are the pipeline's answer.

    :param pipeline: a Haystack ``Pipeline``.
    :param name: an explicit component name (checked: it must output ``documents``).
    :returns: the single component whose ``documents`` output is not connected, or ``name``.
    :raises ValueError: if there is no such component, or several, or ``name`` outputs no documents.
    """
    if name is not None:
        listing = document_components(pipeline)
        if name not in listing:
            raise ValueError(
                f"pipeline has no component {name!r} with a 'documents' output; those that have one: {listing}"
            )
        return name
    finals = [comp for comp, sockets in pipeline.outputs().items() if DOCUMENTS in sockets]
    if len(finals) != 1:
        raise ValueError(f"expected exactly one component whose 'documents' are the pipeline's output, found {finals}")
    return finals[0]


def question_inputs(
    pipeline: Pipeline, question: str, *, top_k: int | None = None, depth: int | None = None
) -> dict[str, dict[str, Any]]:
    """The ``Pipeline.run`` data that asks ``question`` (see the module docstring for the rule).

    :param pipeline: a Haystack ``Pipeline``.
    :param question: the question (a non-empty string).
    :param top_k: length of the final list: set on the output component (``None``: its own setting).
    :param depth: candidates per earlier list: set on every other component that outputs ``documents`` and has
        an open ``top_k`` input (``None``: their own settings).
    :returns: ``{component: {input: value}}``, for this call only (the components are not changed).
    :raises ValueError: on an empty question, a ``top_k``/``depth`` that is not a positive integer, a pipeline
        with no question input or with a mandatory input that is not a question; when ``top_k`` or ``depth`` is
        given, a pipeline without exactly one output component, or (``top_k``) one without an open ``top_k``
        input.
    """
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"the question must be a non-empty string, got {question!r}")
    top_k = check_top_k(top_k, "top_k", allow_none=True)
    depth = check_top_k(depth, "depth", allow_none=True)
    inputs = pipeline.inputs()
    data: dict[str, dict[str, Any]] = {}
    for component, sockets in inputs.items():
        for socket, info in sockets.items():
            if socket in QUESTION_SOCKETS:
                data.setdefault(component, {})[socket] = question
            elif info.get("is_mandatory"):
                raise ValueError(f"pipeline input {component}.{socket} is mandatory but is not a question input")
    if not data:
        raise ValueError(f"the pipeline has no open input named one of {QUESTION_SOCKETS} to receive the question")
    if top_k is None and depth is None:
        return data
    final = output_component(pipeline)
    if top_k is not None:
        if "top_k" not in inputs.get(final, {}):
            raise ValueError(f"top_k given, but the output component {final!r} has no open top_k input")
        data.setdefault(final, {})["top_k"] = top_k
    if depth is not None:
        for component in document_components(pipeline):
            if component != final and "top_k" in inputs.get(component, {}):
                data.setdefault(component, {})["top_k"] = depth
    return data


def run_question(
    pipeline: Pipeline,
    question: str,
    *,
    top_k: int | None = None,
    depth: int | None = None,
    output: str | None = None,
    keep: Iterable[str] = (),
) -> dict[str, list[Document]]:
    """Run ``pipeline`` once on ``question`` and return the ranked lists asked for.

    :param pipeline: a Haystack ``Pipeline``.
    :param question: the question.
    :param top_k: length of the final list (see :func:`question_inputs`).
    :param depth: candidates per earlier list (see :func:`question_inputs`).
    :param output: the component whose documents are the answer (default: :func:`output_component`).
    :param keep: other components whose ``documents`` are returned too (e.g. each retriever's own list).
    :returns: ``{component: documents}``, the answer first, then ``keep`` in the order given (a kept component
        that did not run is left out).
    :raises ValueError: as :func:`question_inputs`; for a component name without a ``documents`` output; if the
        answering component returned no documents.
    """
    final = output_component(pipeline, output)
    extra = [name for name in dict.fromkeys(keep) if name != final]
    for name in extra:
        output_component(pipeline, name)  # validates the name
    result = pipeline.run(
        question_inputs(pipeline, question, top_k=top_k, depth=depth), include_outputs_from={final, *extra}
    )
    if DOCUMENTS not in result.get(final, {}):
        raise ValueError(f"component {final!r} returned no 'documents' (got {sorted(result.get(final, {}))})")
    lists = {final: result[final][DOCUMENTS]}
    for name in extra:
        if DOCUMENTS in result.get(name, {}):
            lists[name] = result[name][DOCUMENTS]
    return lists


def retrieve(
    pipeline: Pipeline, question: str, top_k: int | None = None, *, depth: int | None = None
) -> list[Document]:
    """Run ``pipeline`` on one question and return its ranked documents (best first).

    :param pipeline: a pipeline with one output component that has a ``documents`` output.
    :param question: the question.
    :param top_k: number of documents to return (``None``: the pipeline's own setting).
    :param depth: candidates each retriever returns (``None``: the pipeline's own setting).
    :returns: the documents of the output component.
    """
    lists = run_question(pipeline, question, top_k=top_k, depth=depth)
    return next(iter(lists.values()))  # the answer comes first
