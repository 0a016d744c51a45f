"""EncoderRanker: reranks retrieved documents by a second, frozen bi-encoder's inner product with the query."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from spart.components.embedders._base import PRECISIONS  # the dense encoders' own
from spart.components.rankers._common import as_passages, check_rerank_inputs, check_retriever_weight, reranked
from spart.validation import check_positive_int, check_top_k


@component
class EncoderRanker:
    """Reranks documents by a larger encoder's ``query . document`` score, alone or mixed with the retriever's.

    The first stage searches a cheap encoder's index; this component re-embeds only the candidates with an
    encoder that ranks better but costs too much to index the corpus with (e.g. all-mpnet-base-v2 over
    all-MiniLM-L6-v2's top 40). It is also what ``spart audit`` and ``spart adapt`` measure and write when the
    teacher is an encoder (:class:`~spart.teacher.EncoderScorer` is the shared scoring piece; embeddings of
    repeated documents are cached by document id for the life of the component).

    Documents must have non-empty ``content`` (a document without it raises ``ValueError`` naming its id). Inputs
    are not modified; the output holds new ``Document`` objects, best first.

    :param model: the reranking encoder: a sentence-transformers or spart directory, or a hub id.
    :param top_k: documents returned (``None``: all); ``run(top_k=...)`` overrides it.
    :param batch_size: texts per encoder forward pass.
    :param precision: ``"auto"`` (bf16 where native), ``"fp32"`` or ``"bf16"``.
    :param device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``...
    :param title_meta_field: meta field holding the document title (missing: no title).
    :param retriever_weight: ``0``: rank by this encoder's score alone. Above 0, rank by the per-query z-score
        interpolation ``(1 - w) * z(score) + w * z(retriever score)`` (:func:`spart.fusion.interpolate_zscores`);
        every document then needs the ``score`` its retriever gave it, and the output ``score`` is the mixed value.

    Usage::

        from haystack import Document
        from spart.components.rankers import EncoderRanker

        ranker = EncoderRanker(model="models/all-mpnet-base-v2", top_k=2)
        ranker.warm_up()
        docs = [Document(content="Paris is the capital of France.", meta={"title": "Paris"}),
                Document(content="Bananas are yellow fruit.", meta={"title": "Banana"})]
        best = ranker.run(query="What is the capital of France?", documents=docs)["documents"]
    """

    def __init__(
        self,
        model: str,
        top_k: int | None = 10,
        batch_size: int = 64,
        precision: str = "auto",
        device: str = "auto",
        title_meta_field: str = "title",
        retriever_weight: float = 0.0,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"EncoderRanker needs model: an encoder directory or hub id, got {model!r}")
        check_top_k(top_k, allow_none=True)
        check_positive_int(batch_size, "batch_size")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if not isinstance(device, str) or not device:
            raise ValueError(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', got {device!r}")
        retriever_weight = check_retriever_weight(retriever_weight)
        self.model = model
        self.top_k = top_k
        self.batch_size = batch_size
        self.precision = precision
        self.device = device
        self.title_meta_field = title_meta_field
        self.retriever_weight = retriever_weight
        self._scorer = None

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component to a dictionary.

        :returns: a dictionary with ``type`` and ``init_parameters``.
        """
        return default_to_dict(
            self,
            model=self.model,
            top_k=self.top_k,
            batch_size=self.batch_size,
            precision=self.precision,
            device=self.device,
            title_meta_field=self.title_meta_field,
            retriever_weight=self.retriever_weight,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderRanker:
        """Deserialise the component from a dictionary made by :meth:`to_dict`.

        :param data: the dictionary.
        :returns: the component.
        """
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Load the encoder. Safe to call more than once."""
        if self._scorer is not None:
            return
        from spart.teacher.encoder import EncoderScorer

        scorer = EncoderScorer(self.model, device=self.device, precision=self.precision, batch_size=self.batch_size)
        scorer.warm_up()
        self._scorer = scorer

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, list[Document]]:
        """Rerank ``documents`` for ``query``.

        :param query: the question.
        :param documents: retrieved documents (any order); each needs non-empty ``content``.
        :param top_k: documents to return; overrides the init ``top_k``.
        :returns: ``{"documents": [...]}``: new Documents, best first, ``score`` = the encoder's inner product (or
            the interpolated score when ``retriever_weight`` > 0).
        :raises ValueError: empty query, bad ``top_k``, a document without content, or (with ``retriever_weight``)
            one without a retriever score.
        """
        check_top_k(top_k, allow_none=True)
        check_rerank_inputs("EncoderRanker", query, documents, self.retriever_weight)
        top_k = self.top_k if top_k is None else top_k
        if not documents:
            return {"documents": []}
        if self._scorer is None:
            self.warm_up()
        scores = self._scorer.score(query, as_passages(documents, self.title_meta_field))
        return {"documents": reranked(documents, scores, self.retriever_weight, top_k)}
