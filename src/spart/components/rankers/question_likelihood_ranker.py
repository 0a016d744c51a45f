"""QuestionLikelihoodRanker: UPR reranking of retrieved documents by log p(question | document) under a frozen LM."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from spart.components.rankers._common import as_passages, check_rerank_inputs, check_retriever_weight, reranked
from spart.teacher.prompts import PromptTemplate
from spart.validation import check_positive_int, check_top_k


@component
class QuestionLikelihoodRanker:
    """Reranks documents by how likely a frozen LM finds the query given each document (UPR, Sachan et al. 2022).

    Each document's ``score`` becomes the mean log-probability of the query's tokens (prompted as
    ``"Question: {query}"``) given ``"Passage: {title} {content} ..."``; higher is better, so scores are
    negative. UPR sums token log-probabilities; for one query the ranking is the same. UPR used T0-3B; the
    default teacher here is the packaged SmolLM2-135M-Instruct GGUF (runs offline on CPU, far weaker).

    Documents must have non-empty ``content``: a document without it raises ``ValueError`` naming its id
    (silently dropping it would hide a broken upstream component). Inputs are not modified; the output holds
    new ``Document`` objects, best first.

    :param model: teacher LM: HF directory, cached hub id, or ``.gguf`` file; ``None`` = packaged SmolLM2.
    :param gguf_file: GGUF file name inside the ``model`` directory.
    :param model_kind: ``"auto"``, ``"causal"`` or ``"seq2seq"``.
    :param top_k: documents returned (``None``: all); ``run(top_k=...)`` overrides it.
    :param batch_size: (query, document) pairs per LM forward pass.
    :param precision: ``"auto"``, ``"fp32"`` or ``"bf16"`` (autocast).
    :param device: ``"cpu"``, ``"cuda"``, ...; ``None`` = CUDA when available.
    :param use_chat_template: causal LMs: wrap the passage prompt in the tokenizer's chat template.
    :param passage_template: prompt with ``{title}`` and ``{text}``; ``None`` = the default for the model kind.
    :param question_template: scored text with ``{question}``; ``None`` = ``"Question: {question}"``.
    :param max_passage_tokens: document text is truncated to this many tokens.
    :param max_question_tokens: the query is truncated to this many tokens.
    :param title_meta_field: meta field holding the document title (missing: no title).
    :param cache_path: optional SQLite score cache file, shared with the ART trainer's teacher.
    :param backend: ``"auto"``, ``"torch"``, ``"onnx"`` or ``"onnx-int8"``: what runs a causal teacher (see
        :class:`~spart.teacher.likelihood.QuestionLikelihoodScorer`; the ONNX ones need ``pip install 'spart[onnx]'``).
    :param retriever_weight: ``0`` (UPR): rank by the LM score alone. Above 0, rank by the per-query z-score
        interpolation ``(1 - w) * z(LM score) + w * z(retriever score)`` (:func:`spart.fusion.interpolate_zscores`),
        which can beat both when the LM and the retriever are of similar strength; every document then needs the
        ``score`` its retriever gave it, and the output ``score`` is the interpolated value.

    Usage::

        from haystack import Document
        from spart.components.rankers import QuestionLikelihoodRanker

        ranker = QuestionLikelihoodRanker(top_k=2)
        ranker.warm_up()
        docs = [Document(content="Paris is the capital of France.", meta={"title": "Paris"}),
                Document(content="Bananas are yellow fruit.", meta={"title": "Banana"})]
        best = ranker.run(query="What is the capital of France?", documents=docs)["documents"]
    """

    def __init__(
        self,
        model: str | None = None,
        gguf_file: str | None = None,
        model_kind: str = "auto",
        top_k: int | None = 10,
        batch_size: int = 16,
        precision: str = "auto",
        device: str | None = None,
        use_chat_template: bool | None = None,
        passage_template: str | None = None,
        question_template: str | None = None,
        max_passage_tokens: int = 384,
        max_question_tokens: int = 64,
        title_meta_field: str = "title",
        cache_path: str | None = None,
        backend: str = "auto",
        retriever_weight: float = 0.0,
    ) -> None:
        from spart.teacher.likelihood import BACKENDS, PRECISIONS  # light: numpy only

        check_top_k(top_k, allow_none=True)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if model_kind not in ("auto", "causal", "seq2seq"):
            raise ValueError(f"model_kind must be 'auto', 'causal' or 'seq2seq', got {model_kind!r}")
        for name, value in (
            ("batch_size", batch_size),
            ("max_passage_tokens", max_passage_tokens),
            ("max_question_tokens", max_question_tokens),
        ):
            check_positive_int(value, name)
        retriever_weight = check_retriever_weight(retriever_weight)
        if passage_template is not None or question_template is not None:
            PromptTemplate(passage_template or "{text}", question_template or "{question}")  # validate early
        self.model = model
        self.gguf_file = gguf_file
        self.model_kind = model_kind
        self.top_k = top_k
        self.batch_size = batch_size
        self.precision = precision
        self.device = device
        self.use_chat_template = use_chat_template
        self.passage_template = passage_template
        self.question_template = question_template
        self.max_passage_tokens = max_passage_tokens
        self.max_question_tokens = max_question_tokens
        self.title_meta_field = title_meta_field
        self.cache_path = cache_path
        self.backend = backend
        self.retriever_weight = retriever_weight
        self._scorer = None

    def to_dict(self) -> dict[str, Any]:
        """Serialise the component to a dictionary.

        :returns: a dictionary with ``type`` and ``init_parameters``.
        """
        return default_to_dict(
            self,
            model=self.model,
            gguf_file=self.gguf_file,
            model_kind=self.model_kind,
            top_k=self.top_k,
            batch_size=self.batch_size,
            precision=self.precision,
            device=self.device,
            use_chat_template=self.use_chat_template,
            passage_template=self.passage_template,
            question_template=self.question_template,
            max_passage_tokens=self.max_passage_tokens,
            max_question_tokens=self.max_question_tokens,
            title_meta_field=self.title_meta_field,
            cache_path=self.cache_path,
            backend=self.backend,
            retriever_weight=self.retriever_weight,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionLikelihoodRanker:
        """Deserialise the component from a dictionary made by :meth:`to_dict`.

        :param data: the dictionary.
        :returns: the component.
        """
        return default_from_dict(cls, data)

    def warm_up(self) -> None:
        """Load the teacher LM (and open the score cache). Safe to call more than once."""
        if self._scorer is not None:
            return
        from spart.teacher.cache import ScoreCache
        from spart.teacher.likelihood import QuestionLikelihoodScorer

        scorer = QuestionLikelihoodScorer(
            self.model,
            gguf_file=self.gguf_file,
            model_kind=self.model_kind,
            passage_template=self.passage_template,
            question_template=self.question_template,
            use_chat_template=self.use_chat_template,
            precision=self.precision,
            device=self.device,
            batch_size=self.batch_size,
            max_passage_tokens=self.max_passage_tokens,
            max_question_tokens=self.max_question_tokens,
            cache=ScoreCache(self.cache_path) if self.cache_path else None,
            backend=self.backend,
        )
        scorer.warm_up()
        self._scorer = scorer

    @component.output_types(documents=list[Document])
    def run(self, query: str, documents: list[Document], top_k: int | None = None) -> dict[str, list[Document]]:
        """Rerank ``documents`` for ``query``.

        :param query: the question.
        :param documents: retrieved documents (any order); each needs non-empty ``content``.
        :param top_k: documents to return; overrides the init ``top_k``.
        :returns: ``{"documents": [...]}``: new Documents, best first, ``score`` = mean log p(query | document)
            (or the interpolated score when ``retriever_weight`` > 0).
        :raises ValueError: empty query, bad ``top_k``, or a document without content.
        """
        check_top_k(top_k, allow_none=True)
        check_rerank_inputs("QuestionLikelihoodRanker", query, documents, self.retriever_weight)
        top_k = self.top_k if top_k is None else top_k
        if not documents:
            return {"documents": []}
        if self._scorer is None:
            self.warm_up()
        scores = self._scorer.score(query, as_passages(documents, self.title_meta_field))
        return {"documents": reranked(documents, scores, self.retriever_weight, top_k)}
