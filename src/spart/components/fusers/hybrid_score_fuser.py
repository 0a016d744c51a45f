"""HybridScoreFuser: fuse the ranked lists of several retrievers into one (RRF, convex, dense + λ·bm25)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.component.types import Variadic

from spart.fusion import RRF_K, check_mode, check_weights, fuse
from spart.validation import check_top_k

VARIADIC_INPUT = "documents"


@component
class HybridScoreFuser:
    """Fuses ranked document lists from several retrievers into one list; the fused score goes to ``score``.

    Modes (``L`` lists, ``w_i`` the weight of list ``i``, ``r_i(d)`` the 1-based rank and ``s_i(d)`` the
    score of document ``d`` in list ``i``; exact definitions in :mod:`spart.fusion`):

    - ``"rrf"``: ``sum_i w_i / (rrf_k + r_i(d))`` over the lists containing ``d`` (``rrf_k = 60``, ``w_i = 1``).
    - ``"convex_minmax"``: ``sum_i w_i * (s_i(d) - min_i) / (max_i - min_i)``; missing from a list: 0 there;
      a list with all-equal scores gives its documents 1 (``w_i = 1/L`` by default).
    - ``"convex_zscore"``: ``sum_i w_i * (s_i(d) - mean_i) / std_i``; missing: the list's minimum z; all-equal
      scores give 0 (``w_i = 1/L``).
    - ``"weighted_raw"``: ``sum_i w_i * s_i(d)`` on raw scores, a missing document taking the list's minimum
      score: with lists ``(dense, bm25)`` and weights ``(1, λ)`` this is DPR's/Pyserini's ``dense + λ·bm25``
      (``w_i = 1``).

    Inputs: with ``input_names`` (recommended) there is one input per retriever, e.g. ``fuser.dense`` and
    ``fuser.bm25``, and ``weights`` follow ``input_names``. Without it there is one variadic input,
    ``documents``, like Haystack's ``DocumentJoiner``; Haystack's synchronous ``Pipeline.run`` then orders the
    lists alphabetically by the *sending component's name*, which is the order ``weights`` refer to.

    Output documents are new objects (inputs are not modified). A document found in several lists is taken
    from the first list (in input order) that has it. With ``score_meta_key`` set, each output document gets
    ``meta[score_meta_key] = {list_name: raw score or None}`` with the score every list gave it (``None``:
    not retrieved by that list); variadic lists are named ``list_0``, ``list_1``...

    :param mode: ``"rrf"``, ``"convex_minmax"``, ``"convex_zscore"`` or ``"weighted_raw"``.
    :param weights: one non-negative weight per input list; ``None``: the mode's default.
    :param top_k: number of fused documents returned (``None``: all); ``run(top_k=...)`` overrides it.
    :param input_names: names of the input lists (one input socket each); ``None``: one variadic input.
    :param rrf_k: the RRF constant.
    :param score_meta_key: meta field receiving each list's raw score; ``None`` disables it.

    Usage::

        from haystack import Document
        from spart.components.fusers import HybridScoreFuser

        fuser = HybridScoreFuser(mode="weighted_raw", weights=[1.0, 0.1], input_names=["dense", "bm25"])
        fused = fuser.run(
            dense=[Document(id="a", content="...", score=0.8)],
            bm25=[Document(id="a", content="...", score=12.0), Document(id="b", content="...", score=9.5)],
        )["documents"]
    """

    def __init__(
        self,
        mode: str = "rrf",
        weights: list[float] | None = None,
        top_k: int | None = None,
        input_names: list[str] | None = None,
        rrf_k: float = RRF_K,
        score_meta_key: str | None = "retriever_scores",
    ) -> None:
        check_mode(mode)
        check_top_k(top_k, allow_none=True)
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, (int, float)) or rrf_k < 0:
            raise ValueError(f"rrf_k must be a number >= 0, got {rrf_k!r}")
        if input_names is not None:
            input_names = list(input_names)
            if not input_names:
                raise ValueError("input_names must name at least one input list, or be None for a variadic input")
            for name in input_names:
                if not isinstance(name, str) or not name.isidentifier() or name == "top_k":
                    raise ValueError(f"input name {name!r} must be a Python identifier other than 'top_k'")
            if len(set(input_names)) != len(input_names):
                raise ValueError(f"input_names must be distinct, got {input_names}")
            if weights is not None:
                check_weights(weights, len(input_names))
            for name in input_names:
                component.set_input_type(self, name, list[Document])
        else:
            if weights is not None:
                check_weights(weights, len(weights))  # count is checked at run time, values now
            component.set_input_type(self, VARIADIC_INPUT, Variadic[list[Document]])
        if score_meta_key is not None and (not isinstance(score_meta_key, str) or not score_meta_key):
            raise ValueError(f"score_meta_key must be a non-empty string or None, got {score_meta_key!r}")
        self.mode = mode
        self.weights = None if weights is None else [float(w) for w in weights]
        self.top_k = top_k
        self.input_names = input_names
        self.rrf_k = rrf_k
        self.score_meta_key = score_meta_key

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component to a dictionary.

        :returns: a dictionary with ``type`` and ``init_parameters``.
        """
        return default_to_dict(
            self,
            mode=self.mode,
            weights=self.weights,
            top_k=self.top_k,
            input_names=self.input_names,
            rrf_k=self.rrf_k,
            score_meta_key=self.score_meta_key,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HybridScoreFuser:
        """Deserialise the component from a dictionary made by :meth:`to_dict`.

        :param data: the dictionary.
        :returns: the component.
        """
        return default_from_dict(cls, data)

    def _named_lists(self, inputs: dict[str, Any]) -> list[tuple[str, list[Document]]]:
        if self.input_names is not None:
            unknown = set(inputs) - set(self.input_names)
            if unknown:
                raise ValueError(
                    f"HybridScoreFuser got unknown input(s) {sorted(unknown)}; inputs are {self.input_names}"
                )
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise ValueError(f"HybridScoreFuser is missing input list(s) {missing}")
            named = [(name, inputs[name]) for name in self.input_names]
        else:
            unknown = set(inputs) - {VARIADIC_INPUT}
            if unknown:
                raise ValueError(f"HybridScoreFuser got unknown input(s) {sorted(unknown)}; its input is 'documents'")
            lists = list(inputs.get(VARIADIC_INPUT) or [])
            named = [(f"list_{i}", docs) for i, docs in enumerate(lists)]
        for name, docs in named:
            if not isinstance(docs, (list, tuple)) or any(not isinstance(d, Document) for d in docs):
                raise ValueError(f"HybridScoreFuser input {name!r} must be a list of Documents")
        return named

    @component.output_types(documents=list[Document])
    def run(self, top_k: int | None = None, **inputs: Any) -> dict[str, Any]:
        """Fuse the input lists.

        :param top_k: overrides the init ``top_k`` for this call.
        :param inputs: the ranked lists: one keyword per ``input_names`` entry, or ``documents`` (a list of
            lists) for the variadic form. Each list is best first.
        :returns: ``{"documents": [...]}``: the fused documents, best first, ``score`` = fused score.
        :raises ValueError: on ``top_k <= 0``, a weight count that does not match the lists, or a document
            without a score in a score-based mode.
        """
        check_top_k(top_k, allow_none=True)
        top_k = top_k if top_k is not None else self.top_k
        named = self._named_lists(inputs)
        needs_scores = self.mode != "rrf"
        ranked_lists, first_seen, raw = [], {}, {}
        for name, docs in named:
            ranked = []
            for doc in docs:
                if needs_scores and doc.score is None:
                    raise ValueError(
                        f"HybridScoreFuser ({self.mode}): document {doc.id!r} in list {name!r} has no score"
                    )
                ranked.append((doc.id, doc.score))
                first_seen.setdefault(doc.id, doc)
                raw.setdefault(doc.id, {}).setdefault(name, doc.score)
            ranked_lists.append(ranked)
        fused = fuse(ranked_lists, mode=self.mode, weights=self.weights, top_k=top_k, rrf_k=self.rrf_k)
        names = [name for name, _ in named]
        out = []
        for doc_id, score in fused:
            doc = first_seen[doc_id]
            meta = dict(doc.meta)
            if self.score_meta_key is not None:
                meta[self.score_meta_key] = {name: raw[doc_id].get(name) for name in names}
            out.append(replace(doc, score=score, meta=meta))
        return {"documents": out}
